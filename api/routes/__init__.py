"""The API's routers: history queries, alerts and feedback, subscriptions, feedback links."""
