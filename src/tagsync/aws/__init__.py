"""AWS edges: the Lambda handler (`handler`) and `tagsync deploy` (`deploy`)."""
