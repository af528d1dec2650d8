"""Stack config -> Settings: types, ranges, secrets and typos fail with the key named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from components.settings import (
    PROJECT,
    Flavor,
    PasswordSource,
    Secret,
    Settings,
    SettingsError,
    declared_keys,
    parse_settings,
    required_secrets,
)
from components.settings.cli import reference_table, render_readme
from components.settings.declarations import check_cnpg_image
from components.settings.stackfile import misplaced_files, misplaced_problems
from tests.program import ROOT, STACKS, stack_config


def fq(key: str) -> str:
    return f"{PROJECT}:{key}"


REQUIRED = {"namespace": "ns"}
"""What every stack sets."""


def parse(values: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> Settings:
    """Parse short keys (with what every stack sets); `secrets` are passed as
    `pulumi config set --secret` would."""
    given = {**REQUIRED, **(values or {}), **(secrets or {})}
    raw = {fq(k): v for k, v in given.items()}
    return parse_settings(raw, frozenset(fq(k) for k in secrets or {}))


def problems_of(values: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        parse(values, secrets)
    return str(caught.value)


def test_no_config_gives_the_declared_defaults() -> None:
    settings = parse()
    assert settings == dataclasses.replace(
        Settings(namespace="ns"), explicit=frozenset({"namespace"})
    )
    assert settings.flyway.connect_retries == 60
    assert settings.flyway.baseline_on_migrate is False
    assert settings.migrations_dir == "database/migrations"
    assert settings.password_source is PasswordSource.GENERATED


@pytest.mark.parametrize(
    ("key", "raw", "path", "expected"),
    [
        ("flywayBaselineOnMigrate", "false", ("flyway", "baseline_on_migrate"), False),
        ("flywayBaselineOnMigrate", "true", ("flyway", "baseline_on_migrate"), True),
        ("flywayConnectRetries", "0", ("flyway", "connect_retries"), 0),
        ("flywayBaselineVersion", "0", ("flyway", "baseline_version"), "0"),
        ("flywayBackoffLimit", "0", ("flyway", "backoff_limit"), 0),
        ("flywayOutOfOrder", "false", ("flyway", "out_of_order"), False),
        ("createNamespace", "false", ("create_namespace",), False),
        ("postgresNetworkPolicyEnabled", "false", ("postgres", "network_policy_enabled"), False),
        ("postgresStorageClass", "", ("postgres", "storage_class"), ""),
    ],
)
def test_explicit_false_zero_and_empty_are_values_not_unset(
    key: str, raw: str, path: tuple[str, ...], expected: object
) -> None:
    value: object = parse({key: raw})
    for attribute in path:
        value = getattr(value, attribute)
    assert value == expected
    assert type(value) is type(expected)


def test_every_boolean_and_zero_allowing_integer_round_trips() -> None:
    """No key may turn an explicit false or 0 into its default (the old chart's bug)."""
    for name, key in declared_keys().items():
        # What the key needs to be read at all: a flavor that reads it; protection off is
        # allowed only for a disposable stack.
        context = {"disposable": "true"}
        if key.spec.flavors is not None:
            context["databaseFlavor"] = sorted(f.value for f in key.spec.flavors)[0]
            if context["databaseFlavor"] == "cloudnative-pg":
                context |= {"cnpgBackupMethod": "volume-snapshot", "cnpgBackupSnapshotClass": "c"}
        if key.type is bool:
            for raw, want in (("true", True), ("false", False)):
                settings = parse({**context, name: raw})
                assert _field_value(settings, name) is want, name
        elif key.type is int and key.spec.minimum == 0:
            assert _field_value(parse({**context, name: "0"}), name) == 0, name


def _field_value(settings: Settings, key: str) -> object:
    import dataclasses  # noqa: PLC0415

    groups: list[object] = [settings]
    while groups:
        group = groups.pop()
        for f in dataclasses.fields(group):  # type: ignore[arg-type]
            spec = f.metadata.get("spec")
            if f.metadata.get("derived"):
                continue
            if spec is None:
                groups.append(getattr(group, f.name))
            elif spec.key == key:
                return getattr(group, f.name)
    raise AssertionError(key)


BAD_CONFIG = [
    # (key, raw value, words the message must contain)
    ("flywayConnectRetries", "-1", ["out of range", "integer >= 0"]),
    ("flywayConnectRetries", "sixty", ['"sixty"', "integer >= 0"]),
    ("flywayConnectRetries", "1.5", ["integer >= 0"]),
    ("flywayConnectRetriesInterval", "0", ["integer >= 1"]),
    ("flywayBaselineOnMigrate", "yes", ['"yes"', "true or false"]),
    ("flywayBaselineOnMigrate", "True", ["true or false"]),
    ("flywayBaselineVersion", "v1", ["Flyway version"]),
    ("flywayBaselineVersion", "1.a", ["Flyway version"]),
    ("flywayBaselineVersion", "", ["Flyway version"]),
    ("postgresArchitecture", "cluster", ["standalone, replication"]),
    ("passwordSource", "vault", ["generated, config"]),
    ("namespace", "Trade_Stream", ["DNS label"]),
    ("postgresStorageSize", "8 GB", ["quantity"]),
    ("postgresChartVersion", "latest", ["exact chart version"]),
    ("flywayVersion", "11", ["exact Flyway release"]),
    ("databaseOwner", "postgres", ["non-superuser"]),
    ("databaseName", "Trade-Stream", ["PostgreSQL identifier"]),
    ("flywayJobTimeoutSeconds", "-5", ["integer >= 1"]),
    ("postgresReleaseName", "r" * 54, ["54 characters", "Helm allows at most 53"]),
    ("postgresReleaseName", "r" * 46, ["client label key", "shorten it by 1 characters"]),
    ("cnpgClusterName", "1st-cluster", ["must start with a letter"]),
    ("cnpgClusterName", "c" * 51, ["at most 50"]),
    ("cnpgImage", "ghcr.io/cloudnative-pg/postgresql:latest", ["major version", ":17.6"]),
    ("cnpgImage", "registry:5000/postgresql", ["major version"]),
    ("cnpgImage", "postgresql@sha256:" + "a" * 64, ["major version"]),
]


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/cloudnative-pg/postgresql:17.6",
        "registry:5000/team/postgresql:15.20-bookworm",
        "ghcr.io/cloudnative-pg/postgresql:17.6-standard-trixie@sha256:" + "0" * 64,
        "postgres:16",
    ],
)
def test_an_operand_image_whose_tag_names_the_major_version_is_taken(image: str) -> None:
    assert check_cnpg_image(image) is None


@pytest.mark.parametrize(
    ("key", "raw", "words"), BAD_CONFIG, ids=[f"{k}={v!r}" for k, v, _ in BAD_CONFIG]
)
def test_bad_value_names_the_key_the_value_and_what_is_allowed(
    key: str, raw: str, words: list[str]
) -> None:
    message = problems_of({key: raw})
    assert fq(key) in message
    for word in words:
        assert word in message


def test_unknown_key_is_a_typo_with_a_suggestion() -> None:
    message = problems_of({"flywayConectRetries": "5"})
    assert fq("flywayConectRetries") in message
    assert "unknown key" in message
    assert "did you mean 'flywayConnectRetries'" in message


def test_other_namespaces_are_left_to_their_providers() -> None:
    settings = parse_settings({"kubernetes:context": "kind-dev", fq("namespace"): "x"})
    assert settings.namespace == "x"


def test_missing_required_secret_names_the_key_and_the_command() -> None:
    message = problems_of({"passwordSource": "config"})
    assert fq("adminPassword") in message
    assert fq("ownerPassword") in message
    assert "pulumi config set --secret adminPassword" in message
    assert fq("replicationPassword") not in message  # standalone needs none


def test_replication_also_needs_the_replication_password() -> None:
    message = problems_of(
        {
            "passwordSource": "config",
            "postgresArchitecture": "replication",
            "postgresReadReplicas": "1",
        },
        {"adminPassword": "a", "ownerPassword": "b"},
    )
    assert fq("replicationPassword") in message


def test_a_password_in_plain_text_is_refused_and_not_echoed() -> None:
    message = problems_of({"passwordSource": "config", "adminPassword": "hunter2-plain"})
    assert fq("adminPassword") in message
    assert "plain text" in message
    assert "hunter2-plain" not in message


def test_secrets_are_read_as_secrets_and_never_printed() -> None:
    settings = parse(
        {"passwordSource": "config"}, {"adminPassword": "s3cr3t-a", "ownerPassword": "s3cr3t-b"}
    )
    assert settings.credentials.admin_password == Secret("s3cr3t-a")
    assert "s3cr3t" not in repr(settings)


def test_a_configured_password_is_refused_when_passwords_are_generated() -> None:
    message = problems_of(secrets={"ownerPassword": "x"})
    assert fq("ownerPassword") in message
    assert "passwordSource" in message


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"postgresArchitecture": "replication"}, "postgresReadReplicas", ">= 1"),
        ({"postgresReadReplicas": "2"}, "postgresReadReplicas", "standalone"),
        (
            {"flywayJobTimeoutSeconds": "60", "flywayActiveDeadlineSeconds": "600"},
            "flywayJobTimeoutSeconds",
            "shorter than flywayActiveDeadlineSeconds",
        ),
    ],
)
def test_rules_across_keys_name_the_key_to_change(
    values: dict[str, str], key: str, words: str
) -> None:
    message = problems_of(values)
    assert fq(key) in message
    assert words in message


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        parse({"flywayConnectRetries": "-1", "namespace": "UPPER", "flywayOutOfOrdr": "true"})
    assert len(caught.value.problems) == 3


def _stack_settings(stack: str) -> Settings:
    """A stack file's settings, with stand-ins for the secrets an operator would set."""
    values = stack_config(stack)
    secrets = {fq(k): "x" for k in required_secrets(values)}
    return parse_settings({**values, **secrets}, frozenset(secrets))


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_file_is_valid(stack: str) -> None:
    assert stack_config(stack), f"stacks/Pulumi.{stack}.yaml has no config"
    assert _stack_settings(stack).namespace


def test_each_stack_is_the_kind_of_environment_it_stands_for() -> None:
    """What makes each stack the kind it is; the values within (sizes, counts, protection,
    Flyway's settings) are each stack file's own, and the tests hold for any of them."""
    dev, staging, prod = (_stack_settings(s) for s in STACKS)
    assert len({dev.namespace, staging.namespace, prod.namespace}) == 3
    assert dev.database.flavor is Flavor.BITNAMI
    assert prod.database.flavor is Flavor.CLOUDNATIVE_PG
    assert not dev.database.manages_roles
    # Deploys run outside the cluster: staging and prod manage roles from inside it.
    assert staging.database.roles_in_cluster
    assert prod.database.roles_in_cluster
    assert not staging.database.access_host
    assert not prod.database.access_host
    assert prod.password_source is PasswordSource.CONFIG


def test_the_project_file_declares_no_config_so_the_programs_message_is_the_one_shown() -> None:
    """A declared type makes the CLI refuse a value before the program runs, naming neither
    the value nor what is allowed, and declared defaults hide which keys a stack sets."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    assert project["stackConfigDir"] == "stacks"
    assert "config" not in project


def test_readme_configuration_reference_is_up_to_date() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- configuration-reference:start")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- configuration-reference:end -->")
    assert readme[start:end] == reference_table(), "run `make config-reference`"
    assert render_readme(readme) == readme


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        ("dev", set()),
        ("staging", {"cnpgBackupAccessKeyId", "cnpgBackupSecretAccessKey"}),
        ("prod", {"adminPassword", "cnpgBackupAccessKeyId", "cnpgBackupSecretAccessKey"}),
    ],
)
def test_each_stack_names_the_secrets_an_operator_must_set(stack: str, expected: set[str]) -> None:
    assert required_secrets(stack_config(stack)) == expected


# -- Flyway placeholders ------------------------------------------------------------------------


def test_placeholders_default_to_flyways_own_behaviour() -> None:
    flyway = parse().flyway
    assert flyway.placeholder_replacement is True
    assert flyway.placeholders == ()
    assert flyway.secret_placeholders == ()
    assert parse({"flywayPlaceholderReplacement": "false"}).flyway.placeholder_replacement is False


def test_placeholder_objects_arrive_as_json_and_are_read_sorted() -> None:
    flyway = parse(
        {"flywayPlaceholders": '{"region": "eu", "Empty": ""}'},
        {"flywaySecretPlaceholders": '{"api_key": "s3cr3t-Value"}'},
    ).flyway
    assert flyway.placeholders == (("Empty", ""), ("region", "eu"))
    assert flyway.secret_placeholders == (("api_key", Secret("s3cr3t-Value")),)
    assert "s3cr3t-Value" not in repr(flyway)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("eu", '"eu" is not an object of placeholder names to strings'),
        ('["a"]', "is not an object of placeholder names to strings"),
        (
            '{"count": 3}',
            "flywayPlaceholders.count = 3: must be a string: quote it in the stack file, or set "
            "it with `pulumi config set --type string --path 'flywayPlaceholders.count' 3`",
        ),
        ('{"on": true}', "flywayPlaceholders.on = true: must be a string"),
        (
            '{"a.b": "x"}',
            'flywayPlaceholders.a.b = "x": "a.b" cannot be passed to Flyway',
        ),
        ('{"a-b": "x"}', "rename the placeholder, e.g. to 'a_b'"),
        ('{"Region": "x", "region": "y"}', "is the same placeholder as 'Region'"),
    ],
)
def test_bad_placeholder_values_name_the_key_the_value_and_the_fix(raw: str, words: str) -> None:
    message = problems_of({"flywayPlaceholders": raw})
    assert f"{PROJECT}:flywayPlaceholders" in message
    assert words in message


def test_a_secret_placeholder_in_plain_text_is_refused_with_the_secret_command() -> None:
    message = problems_of({"flywaySecretPlaceholders": '{"api_key": "leaked-Value-1"}'})
    assert f"{PROJECT}:flywaySecretPlaceholders.api_key: is stored in plain text" in message
    assert "pulumi config set --secret --path 'flywaySecretPlaceholders.api_key' <value>" in message
    assert "leaked-Value-1" not in message


def test_a_bad_secret_placeholder_never_shows_its_value() -> None:
    message = problems_of(secrets={"flywaySecretPlaceholders": '{"a.b": "hidden-Value-2"}'})
    assert "flywaySecretPlaceholders.a.b" in message
    assert "hidden-Value-2" not in message


def test_plain_placeholders_stored_as_a_secret_are_sent_to_the_secret_key() -> None:
    message = problems_of(secrets={"flywayPlaceholders": '{"region": "eu"}'})
    assert "secret placeholders belong in flywaySecretPlaceholders" in message


def test_the_same_placeholder_in_both_objects_is_refused() -> None:
    message = problems_of(
        {"flywayPlaceholders": '{"api_key": "x"}'},
        {"flywaySecretPlaceholders": '{"API_KEY": "y-Secret-3"}'},
    )
    assert f"{PROJECT}:flywaySecretPlaceholders.API_KEY: is also set in flywayPlaceholders" in (
        message
    )
    assert "y-Secret-3" not in message


def test_a_stack_file_the_cli_would_not_read_is_named_with_what_it_sets(tmp_path: Path) -> None:
    root = tmp_path
    (root / "stacks").mkdir()
    (root / "stacks" / "Pulumi.dev.yaml").write_text("config:\n  tradestream-database:a: '1'\n")
    assert misplaced_problems(root, "dev") == []
    for name in ("Pulumi.dev.yaml", "stacks/pulumi.DEV.yml", "Pulumi.dev.yml"):
        (root / name).write_text("config:\n  a: 2\n  tradestream-database:b: x\n")
    (root / "Pulumi.devel.yaml").write_text("")  # another stack's
    assert sorted(str(p.relative_to(root)) for p in misplaced_files(root, "dev")) == [
        "Pulumi.dev.yaml",
        "Pulumi.dev.yml",
        "stacks/pulumi.DEV.yml",
    ]
    [first, *_] = misplaced_problems(root, "dev")
    assert first.startswith("Pulumi.dev.yaml: the Pulumi CLI does not read this file")
    assert "tradestream-database:a: '2' (stacks/Pulumi.dev.yaml: '1')" in first
    assert "tradestream-database:b: 'x' (stacks/Pulumi.dev.yaml: '(not set)')" in first
