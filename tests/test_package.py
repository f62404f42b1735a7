"""schema.json as a Data Package: tables, references, approvers; every mistake named by resource and field."""

from __future__ import annotations

import copy

import pytest

from package import ForeignKey, Package
from schema import SchemaError

CATALOG = {
    "name": "company",
    "resources": [
        {"name": "teams", "title": "Teams", "schema": {"primaryKey": "name", "fields": [{"name": "name"}]}},
        {"name": "systems", "schema": {"primaryKey": "code", "fields": [{"name": "code"}, {"name": "vendor"}]}},
        {
            "name": "datasets",
            "approvers": ["dora"],
            "schema": {
                "primaryKey": "id",
                "fields": [{"name": "id"}, {"name": "team"}, {"name": "system"}],
                "foreignKeys": [
                    {"fields": "team", "reference": {"resource": "teams", "fields": "name"}},
                    {"fields": ["system"], "reference": {"resource": "systems", "fields": ["code"]}},
                ],
            },
        },
    ],
}


def with_change(change) -> dict:
    data = copy.deepcopy(CATALOG)
    change(data)
    return data


def test_a_data_package_gives_its_tables_in_order_with_references_and_approvers():
    package = Package.from_dict(CATALOG)
    assert package.is_package and [t.name for t in package.tables] == ["teams", "systems", "datasets"]
    datasets = package.table("datasets")
    assert datasets.approvers == ("dora",) and datasets.schema.name == "datasets"
    assert datasets.foreign_keys == (ForeignKey("team", "teams", "name"), ForeignKey("system", "systems", "code"))
    assert package.table("teams").title == "Teams" and package.table("systems").title == "systems"
    assert [(t.name, fk.field) for t, fk in package.references_to("systems")] == [("datasets", "system")]


def test_a_lone_table_schema_is_a_package_of_one_table():
    package = Package.load("examples/catalog.schema.json")
    assert not package.is_package and [t.name for t in package.tables] == ["datasets"]
    assert package.first.schema.key == "id" and package.first.title == "Dataset catalog"


def test_the_default_schema_is_the_catalog_with_teams_and_source_systems():
    package = Package.load("schema.json")
    assert package.is_package and [t.name for t in package.tables] == ["datasets", "teams", "source_systems"]
    assert [(fk.field, fk.resource) for fk in package.first.foreign_keys] == [
        ("team", "teams"),
        ("source_system", "source_systems"),
    ]
    catalog = Package.load("examples/catalog.schema.json").first.schema
    assert package.first.schema.names == catalog.names  # the tests' catalog is the default's first table


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(resources=[]), '"resources" must be a non-empty list'),
        (lambda d: d["resources"][0].update(name="Teams"), 'resource 1: needs a "name" of lower-case letters'),
        (lambda d: d["resources"][1].update(name="teams"), "resource 'teams': the name is used twice"),
        (lambda d: d["resources"][0].pop("schema"), "resource 'teams': needs a \"schema\""),
        (lambda d: d["resources"][2].update(approvers="dora"), "resource 'datasets': \"approvers\" must be a list"),
        (
            lambda d: d["resources"][1]["schema"]["fields"].append({"name": "x", "type": "strng"}),
            "resource 'systems': field 3 ('x'): unknown type 'strng'",
        ),
        (
            lambda d: d["resources"][2]["schema"]["foreignKeys"][0].update(fields="owner"),
            "resource 'datasets', field 'owner': the foreign key names a column this table does not have",
        ),
        (
            lambda d: d["resources"][2]["schema"]["foreignKeys"][0]["reference"].update(resource="people"),
            "resource 'datasets', field 'team': refers to a table 'people' that the package does not have",
        ),
        (
            lambda d: d["resources"][2]["schema"]["foreignKeys"][1]["reference"].update(fields="vendor"),
            "resource 'datasets', field 'system': must refer to the primary key of 'systems' ('code'), not 'vendor'",
        ),
        (
            lambda d: d["resources"][2]["schema"]["foreignKeys"][0].update(fields=["team", "system"]),
            "composite keys are not supported",
        ),
    ],
)
def test_a_bad_descriptor_is_refused_naming_the_resource_and_field(change, message):
    with pytest.raises(SchemaError) as refused:
        Package.from_dict(with_change(change))
    assert message in str(refused.value)


def test_an_empty_reference_resource_means_the_same_table():
    data = {"name": "people", "primaryKey": "id", "fields": [{"name": "id"}, {"name": "manager"}],
            "foreignKeys": [{"fields": "manager", "reference": {"resource": "", "fields": "id"}}]}  # fmt: skip
    assert Package.from_dict(data).first.foreign_keys == (ForeignKey("manager", "people", "id"),)
