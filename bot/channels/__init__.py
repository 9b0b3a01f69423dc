"""Channels: one module per wire protocol; each turns bytes into ``Event`` and ``Outbound`` into deliveries."""
