"""The program under mocks, read as a Job, a database set-up and a privilege model."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace

from components.access.privileges import privilege_model
from tests.contract.harness.bitnami import _bitnami_setup
from tests.contract.harness.cloudnative_pg import _cloudnative_pg_setup
from tests.contract.harness.external import _external_setup
from tests.contract.harness.model import (
    CLUSTER_TYPE,
    CONFIG_MAP_TYPE,
    DEFAULT_FILE_MODE,
    GRANTS_COMPONENT,
    JOB_TYPE,
    PROVIDER_TYPE,
    RELEASE_TYPE,
    ROLE_RESOURCE_TYPES,
    ConfigMapContent,
    DatabaseSetup,
    DeclaredGrants,
    DeclaredJob,
    HarnessError,
    ProjectedSource,
    _secrets,
    check_login,
    declared_model,
)
from tests.program import ROOT, ProgramRun, run_program

# -- reading the program ------------------------------------------------------------------------

_RunKey = tuple[str, tuple[tuple[str, str | None], ...], tuple[tuple[str, str], ...] | None, str]
_runs: dict[_RunKey, ProgramRun] = {}


def _fingerprint(config: Mapping[str, str | None]) -> str:
    """SHA-256 of the migrations directory the run would read, so a cached run is never stale."""
    directory = ROOT / (config.get("migrationsDir") or "database/migrations")
    sha = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            for chunk in (path.relative_to(directory).as_posix().encode(), path.read_bytes()):
                sha.update(len(chunk).to_bytes(8, "big"))
                sha.update(chunk)
    return sha.hexdigest()


def program_run(
    stack: str,
    config: Mapping[str, str | None] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ProgramRun:
    """`run_program`, cached per (stack, config, secrets, content of the migrations directory)."""
    overrides = dict(config or {})
    given = tuple(sorted(secrets.items())) if secrets is not None else None
    key = (stack, tuple(sorted(overrides.items())), given, _fingerprint(overrides))
    if key not in _runs:
        _runs[key] = run_program(stack, config=overrides, secrets=secrets)
    return _runs[key]


def declared_job(
    stack: str,
    config: Mapping[str, str | None] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> DeclaredJob:
    """The Job, its ConfigMaps and the database set-up, as the program declares them.

    Raises HarnessError when the program failed (a preview would have stopped there too).
    """
    run = program_run(stack, config, secrets)
    if run.error is not None:
        raise HarnessError(f"the program failed for stack {stack!r}: {run.error}") from run.error
    return job_from_run(run)


def job_from_run(run: ProgramRun) -> DeclaredJob:
    """Extract a DeclaredJob from recorded resources; strict about the shape it relies on."""
    job = run.flyway_job().inputs
    pod = job["spec"]["template"]["spec"]
    containers = pod["containers"]
    if len(containers) != 1:
        raise HarnessError(f"expected one container, found {[c['name'] for c in containers]}")
    container = containers[0]
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    mounts = tuple(container.get("volumeMounts", []))

    projected = [m for m in mounts if "projected" in volumes.get(m["name"], {})]
    if len(projected) != 1:
        raise HarnessError(f"expected one projected volume mount, found {projected}")
    volume = volumes[projected[0]["name"]]["projected"]
    sources: list[ProjectedSource] = []
    for source in volume.get("sources", []):
        if set(source) != {"configMap"}:
            raise HarnessError(f"unsupported projected source {source}")
        items = source["configMap"].get("items")
        if not items:
            raise HarnessError(f"ConfigMap source without items: {source}")
        sources.append(
            ProjectedSource(
                config_map=source["configMap"]["name"],
                items=tuple((item["key"], item["path"]) for item in items),
                modes={item["path"]: int(item["mode"]) for item in items if "mode" in item},
            )
        )

    config_maps = {
        cm.outputs["metadata"]["name"]: ConfigMapContent(
            data=dict(cm.inputs.get("data") or {}),
            binary_data=dict(cm.inputs.get("binaryData") or {}),
        )
        for cm in run.of_type(CONFIG_MAP_TYPE)
    }
    declared = DeclaredJob(
        stack=run.stack,
        image=container["image"],
        command=tuple(container["command"]),
        env=tuple(container.get("env", [])),
        volume_mounts=mounts,
        mount_path=projected[0]["mountPath"],
        scratch_paths=tuple(
            m["mountPath"] for m in mounts if "emptyDir" in volumes.get(m["name"], {})
        ),
        sources=tuple(sources),
        default_mode=int(volume.get("defaultMode", DEFAULT_FILE_MODE)),
        config_maps=config_maps,
        setup=database_setup(run),
        packaged=tuple(run.outputs.get("migrations") or ()),
        secret_values={
            (name, key): str(value)
            for name, data in _secrets(run).items()
            for key, value in data.items()
        },
        run=run,
    )
    check_login(declared, run)
    return declared


# -- the database as declared -------------------------------------------------------------------


def database_setup(run: ProgramRun) -> DatabaseSetup:
    """The flavor and its database set-up, from the Bitnami release, the Cluster, or neither."""
    releases = [r for r in run.of_type(RELEASE_TYPE) if "auth" in (r.inputs.get("values") or {})]
    clusters = run.of_type(CLUSTER_TYPE)
    if len(releases) + len(clusters) > 1:
        found = [r.name for r in (*releases, *clusters)]
        raise HarnessError(f"expected at most one in-cluster database, found {found}")
    if releases:
        setup = _bitnami_setup(releases[0].inputs["values"], run)
    elif clusters:
        setup = _cloudnative_pg_setup(clusters[0].inputs)
    else:
        setup = _external_setup(run)
    exported = run.outputs.get("databaseFlavor")
    if exported is not None and exported != setup.flavor.value:
        raise HarnessError(
            f"the resources are a {setup.flavor.value} database, the output {exported}"
        )
    grants = declared_grants(run)
    if grants is None:
        return replace(setup, model=declared_model(run, setup.database, setup.owner))
    if run.of_type(PROVIDER_TYPE) or any(run.of_type(t) for t in ROLE_RESOURCE_TYPES):
        raise HarnessError("roles managed both in-cluster and with pulumi-postgresql")
    model = privilege_model(setup.database, owner=setup.owner)
    managed = (
        tuple(clusters[0].inputs["spec"].get("managed", {}).get("roles", ())) if clusters else ()
    )
    if clusters and [r["name"] for r in managed] != [r.name for r in model.roles]:
        raise HarnessError(f"the Cluster's managed roles {managed} are not the model's roles")
    return replace(setup, model=model, grants=grants, managed_roles=managed)


def declared_grants(run: ProgramRun) -> DeclaredGrants | None:
    """The in-cluster grants Job and its script, or None when the program declares none."""
    jobs = run.under(GRANTS_COMPONENT, JOB_TYPE)
    if not jobs:
        return None
    [job] = jobs
    pod = job.inputs["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, str] = {}
    script_path = script = ca_secret = None
    config_maps = {cm.outputs["metadata"]["name"]: cm.inputs for cm in run.of_type(CONFIG_MAP_TYPE)}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        kind = next(k for k in ("configMap", "emptyDir", "secret") if k in volume)
        mounts[mount["mountPath"]] = kind
        if kind == "configMap":
            [item] = volume["configMap"]["items"]
            script_path = f"{mount['mountPath']}/{item['path']}"
            script = config_maps[volume["configMap"]["name"]]["data"][item["key"]]
        elif kind == "secret":
            ca_secret = volume["secret"]["secretName"]
    if script_path is None or script is None:
        raise HarnessError("the grants Job mounts no script")
    return DeclaredGrants(
        image=container["image"],
        command=tuple(container["command"]),
        env=tuple(container["env"]),
        mounts=mounts,
        script_path=script_path,
        script=script,
        ca_secret=ca_secret,
    )
