"""The Responses API served by the router: natively where the deployment's provider has it, else
translated to and from its chat completions (request, answer, typed stream events)."""
