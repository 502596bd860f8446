"""Constants shared by the wire server tests."""

OPENAI_KEY = "sk-test-openai-secret"
ANTHROPIC_KEY = "sk-ant-test-secret"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
