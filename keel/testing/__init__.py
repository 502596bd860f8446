"""Test agents without provider keys: a local server speaking the OpenAI and Anthropic APIs.

`keel.testing.server.WireServer` serves scripted `keel.testing.replies.Reply`s;
`python -m keel.testing` serves an echo for pointing a route at by hand.
"""
