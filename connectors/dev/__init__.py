"""Development tooling (the local server, the embedded DynamoDB, `connectors invoke`).

Nothing here is imported by the Lambda handlers.
"""
