"""Capacity planner (planner.py), its command line (plan.py) and the CloudFormation
custom resource that derives the deployed caps (custom_resource.py)."""
