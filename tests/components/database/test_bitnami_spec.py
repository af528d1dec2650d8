"""Chart values and the endpoint, built without Pulumi."""

from __future__ import annotations

import dataclasses
import json

from components.database.bitnami_spec import (
    chart_values,
    client_label,
    endpoint,
    owner_role_sql,
    secret_keys,
)
from components.settings import (
    Architecture,
    DatabaseSettings,
    PostgresSettings,
    bitnami_fullname,
)

DB = DatabaseSettings()


def test_fullname_follows_the_chart_rule() -> None:
    assert bitnami_fullname("tradestream-postgresql") == "tradestream-postgresql"
    assert bitnami_fullname("db") == "db-postgresql"
    assert bitnami_fullname("a" * 53) == "a" * 53 + "-postgresql"[:10].rstrip("-")


def test_endpoint_points_at_the_primary_service_and_the_owner_role() -> None:
    ep = endpoint(PostgresSettings(), DB, "ns")
    assert ep.address.host == "tradestream-postgresql.ns.svc.cluster.local"
    assert ep.address.port == 5432
    assert ep.username == "tradestream_owner"
    assert ep.username != "postgres"
    assert (ep.secret_name, ep.password_key) == ("tradestream-postgresql-credentials", "password")


def test_values_hold_no_password_and_read_the_owned_secret() -> None:
    values = chart_values(PostgresSettings(), DB)
    auth = values["auth"]
    assert auth["existingSecret"] == "tradestream-postgresql-credentials"
    assert auth["username"] == "tradestream_owner"
    assert "password" not in auth
    assert "postgresPassword" not in auth
    text = json.dumps(values).lower()
    assert '"password":' not in text


def test_image_and_the_2025_bitnami_flag() -> None:
    values = chart_values(PostgresSettings(), DB)
    assert values["image"] == {
        "registry": "docker.io",
        "repository": "bitnamilegacy/postgresql",
        "tag": PostgresSettings().image_tag,
    }
    assert values["global"] == {"security": {"allowInsecureImages": True}}
    own = chart_values(
        dataclasses.replace(PostgresSettings(), image_repository="bitnami/postgresql"), DB
    )
    assert "global" not in own


def test_standalone_has_no_replicas_and_replication_has_them() -> None:
    assert "readReplicas" not in chart_values(PostgresSettings(), DB)
    pg = dataclasses.replace(
        PostgresSettings(), architecture=Architecture.REPLICATION, read_replicas=2
    )
    values = chart_values(pg, DB)
    assert values["architecture"] == "replication"
    assert values["readReplicas"]["replicaCount"] == 2
    assert "replication-password" in secret_keys(pg)


def test_storage_class_is_omitted_when_empty_and_passed_when_set() -> None:
    assert "storageClass" not in chart_values(PostgresSettings(), DB)["primary"]["persistence"]
    pg = dataclasses.replace(PostgresSettings(), storage_class="fast-ssd", storage_size="50Gi")
    persistence = chart_values(pg, DB)["primary"]["persistence"]
    assert persistence == {"enabled": True, "size": "50Gi", "storageClass": "fast-ssd"}


def test_network_policy_admits_only_labelled_clients() -> None:
    values = chart_values(PostgresSettings(), DB)
    assert values["primary"]["networkPolicy"] == {"enabled": True, "allowExternal": False}
    assert client_label(PostgresSettings()) == {"tradestream-postgresql-client": "true"}


def test_with_replication_flyway_and_clients_go_to_the_primary() -> None:
    """The chart names the primary `<fullname>-primary` with replication; `<fullname>` is no
    Service then, and its NetworkPolicy admits `<fullname>-primary-client`."""
    pg = dataclasses.replace(
        PostgresSettings(), architecture=Architecture.REPLICATION, read_replicas=1
    )
    assert client_label(pg) == {"tradestream-postgresql-primary-client": "true"}
    host = endpoint(pg, DB, "ns").address.host
    assert host == "tradestream-postgresql-primary.ns.svc.cluster.local"


def test_owner_role_loses_the_rights_migrations_do_not_need() -> None:
    sql = owner_role_sql(DB)
    assert 'ALTER ROLE "tradestream_owner" NOSUPERUSER NOCREATEDB NOCREATEROLE' in sql
    assert 'ALTER DATABASE "tradestream" OWNER TO "tradestream_owner"' in sql
    assert chart_values(PostgresSettings(), DB)["primary"]["initdb"]["scripts"] == {
        "10-owner-role.sql": sql
    }


def test_init_scripts_run_as_the_superuser_with_its_password_from_the_secret() -> None:
    """The image would run them as the owner, who cannot take CREATEDB from itself."""
    env = chart_values(PostgresSettings(), DB)["primary"]["extraEnvVars"]
    assert env == [
        {"name": "POSTGRESQL_INITSCRIPTS_USERNAME", "value": "postgres"},
        {
            "name": "POSTGRESQL_INITSCRIPTS_PASSWORD",
            "valueFrom": {
                "secretKeyRef": {
                    "name": "tradestream-postgresql-credentials",
                    "key": "postgres-password",
                }
            },
        },
    ]


def test_the_exporter_image_comes_from_where_the_main_image_does() -> None:
    pg = dataclasses.replace(PostgresSettings(), metrics_enabled=True)
    metrics = chart_values(pg, DB)["metrics"]
    assert metrics["image"] == {
        "registry": "docker.io",
        "repository": "bitnamilegacy/postgres-exporter",
    }
    mirrored = dataclasses.replace(
        pg, image_registry="registry.example.com", image_repository="mirror/bitnami/postgresql"
    )
    assert chart_values(mirrored, DB)["metrics"]["image"] == {
        "registry": "registry.example.com",
        "repository": "mirror/bitnami/postgres-exporter",
    }
    assert chart_values(PostgresSettings(), DB)["metrics"] == {"enabled": False}


def test_with_metrics_the_exporter_port_alone_is_open_to_any_scraper() -> None:
    """The chart admits its exporter only from the client label, which no Prometheus has."""
    for pg in (
        dataclasses.replace(PostgresSettings(), metrics_enabled=True),
        dataclasses.replace(
            PostgresSettings(),
            metrics_enabled=True,
            architecture=Architecture.REPLICATION,
            read_replicas=1,
        ),
    ):
        values = chart_values(pg, DB)
        assert values["metrics"]["containerPorts"] == {"metrics": 9187}
        for instances in (values["primary"], values.get("readReplicas", values["primary"])):
            assert instances["networkPolicy"] == {
                "enabled": True,
                "allowExternal": False,
                "extraIngress": [{"ports": [{"protocol": "TCP", "port": 9187}]}],
            }
