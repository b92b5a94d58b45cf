"""Running the assistant: training, the servers, and the channels (terminal, REST, Slack, web)."""
