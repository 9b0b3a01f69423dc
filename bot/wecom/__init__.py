"""WeCom (企业微信) protocol pieces: callback crypto, the async API client and the outbox senders."""
