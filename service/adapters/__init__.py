"""Adapters: Tally's side of the systems it talks to (the event stream in Redis, the
receivers of webhooks over HTTP, upstream Stripe). They know the wire, not the rules:
the use cases in service/operations decide what to send and when."""
