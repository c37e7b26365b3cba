"""What only the operator's command needs from AWS, behind ports of its own: queue depths,
alarms in ALARM, and SES's account, identities, configuration set and receipt rule set (SESv2,
and SES v1 for the receipt rules SESv2 does not have). The Lambda functions never use these, so
they live in the development package, not in the layer; `aws` holds the boto3 adapters,
`mailgate_dev.fakes` the in-memory ones.
"""
