"""The pynamodb models and template.yaml describe the same table (one source of truth)."""

from mailgate.adapters import dynamo
from mailgate_dev.local.resources import load_template, table_definition


def _keys(schema):
    return {k["AttributeName"]: k["KeyType"] for k in schema}


def test_models_key_schema_matches_the_table_in_template_yaml():
    table = table_definition(load_template())["create"]
    assert _keys(table["KeySchema"]) == {
        dynamo.Item.pk.attr_name: "HASH", dynamo.Item.sk.attr_name: "RANGE"}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"}


def test_models_index_matches_the_gsi_in_template_yaml():
    table = table_definition(load_template())["create"]
    gsis = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}
    assert set(gsis) == {dynamo.Gsi1.Meta.index_name}
    gsi = gsis[dynamo.Gsi1.Meta.index_name]
    assert _keys(gsi["KeySchema"]) == {"gsi1pk": "HASH", "gsi1sk": "RANGE"}
    assert gsi["Projection"]["ProjectionType"] == "ALL"


def test_ttl_attribute_of_the_models_is_the_tables():
    assert table_definition(load_template())["ttl_attribute"] == dynamo.Item.ttl.attr_name
