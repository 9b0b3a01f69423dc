"""Machinery that knows no feature: message types, dispatcher, middleware, scheduler, outbox, runtime, clock."""
