"""Everything WeCom (企业微信): the AI-bot and self-built-app callback channels, crypto, the async API client,
the outbox senders, and ``mount`` which wires them into the app."""
