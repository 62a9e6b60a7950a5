"""What a compose service runs and where, as Orion's modes, jobs and placement.

``deploy.mode: global`` is a global service; ``replicated-job`` a job whose ``replicas`` are its
completions and its parallelism (``docker stack deploy``'s rule); a top-level job's
``triggers.schedule`` a cron job; ``x-orion-job`` Orion's job block over them. Placement
constraints Orion reads are constraints, ``preferences: spread`` is spread,
``max_replicas_per_node`` maxPerNode. Each mapping is a snippet and the spec it makes; each
refusal names its key path; and the same file planned against what the cluster then shows
changes nothing.
"""

from __future__ import annotations

import pytest
from test_compose_convert import paths, read

from orion.api.schema.services import parse_service_request
from orion.api.service_views import spec_body
from orion.domain.job import JobPolicy
from orion.domain.model import MAX_SCALE
from orion.stack.plan import Action, Running, plan


def one(snippet: str, top: str = ""):
    c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {snippet}\n{top}")
    assert (c.invalid, c.unsupported) == ((), ()), (c.invalid, c.unsupported)
    return c.specs["app_w"]


def wrong(text: str) -> list[tuple[str, str]]:
    c = read(text)
    assert c.invalid, c.specs
    return [(i.path, i.message) for i in c.invalid]


# -- modes -------------------------------------------------------------------------------------
def test_a_global_service_is_orions_global_mode():
    spec = one("deploy: {mode: global, update_config: {parallelism: 2}}")
    assert (spec.mode, spec.count, spec.job, spec.update.max_parallel) == ("global", 0, None, 2)
    # Swarm's parallelism 0 is all at once: every node of a global service.
    assert one("deploy: {mode: global, update_config: {parallelism: 0}}").update.max_parallel == MAX_SCALE


@pytest.mark.parametrize("key", ["deploy: {mode: global, replicas: 2}", "scale: 2\n    deploy: {mode: global}"])
def test_replicas_beside_global_are_refused_as_docker_stack_deploy_refuses_them(key):
    [(path, message)] = wrong(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {key}\n")
    assert path in ("services.w.deploy.replicas", "services.w.scale") and "one replica on every" in message


@pytest.mark.parametrize(("deploy", "completions", "parallelism"), [
    ("{mode: replicated-job}", 1, 1),
    ("{mode: replicated-job, replicas: 5}", 5, 5),
])
def test_a_replicated_jobs_replicas_are_its_completions_and_its_parallelism(deploy, completions, parallelism):
    spec = one(f"deploy: {deploy}")
    assert spec.mode == "job" and spec.task.restart_policy == "never" and spec.health_check is None
    assert (spec.job.completions, spec.job.parallelism) == (completions, parallelism)
    assert spec.job == JobPolicy(completions, parallelism)  # the rest at Orion's defaults


@pytest.mark.parametrize(("snippet", "retries", "backoff"), [
    ("deploy: {mode: replicated-job, restart_policy: {condition: none}}", 0, 10.0),
    ("deploy: {mode: replicated-job, restart_policy: {condition: on-failure, max_attempts: 2, delay: 5s}}", 2, 5.0),
    ("deploy: {mode: replicated-job, restart_policy: {delay: '0'}}", 3, 0.0),
    ("restart: 'no'\n    deploy: {mode: replicated-job}", 0, 10.0),
    ("restart: on-failure:4\n    deploy: {mode: replicated-job}", 4, 10.0),
    ("restart: always\n    deploy: {mode: replicated-job}", 3, 10.0),
])
def test_a_jobs_restart_policy_is_its_retries_and_backoff(snippet, retries, backoff):
    job = one(snippet).job
    assert (job.retries, job.backoff) == (retries, backoff)


def test_x_orion_job_says_what_compose_cannot_over_what_it_says():
    spec = one("deploy: {mode: replicated-job, replicas: 6}\n"
               "    x-orion-job: {parallelism: 2, deadline: 1h, schedule: '0 3 * * *', zone: Europe/Paris, "
               "overlap: replace}")
    assert spec.job == JobPolicy(completions=6, parallelism=2, deadline=3600.0, schedule="0 3 * * *",
                                 zone="Europe/Paris", overlap="replace")


@pytest.mark.parametrize(("snippet", "path", "says"), [
    ("deploy: {mode: replicated-job}\n    x-orion-job: {schedule: 'every day'}", "services.w.x-orion-job.schedule",
     ""),
    ("deploy: {mode: replicated-job}\n    x-orion-job: {overlap: queue}", "services.w.x-orion-job.overlap", ""),
    ("deploy: {mode: replicated-job}\n    x-orion-job: {deadlines: 1h}", "services.w.x-orion-job.deadlines",
     "did you mean 'deadline'"),
    ("deploy: {mode: replicated-job}\n    x-orion-job: [a]", "services.w.x-orion-job", "mapping"),
    ("x-orion-job: {completions: 2}", "services.w.x-orion-job", "is for a job"),
    ("deploy: {mode: replicated-job, restart_policy: {condition: sometimes}}",
     "services.w.deploy.restart_policy.condition", "none, on-failure or any"),
    ("deploy: {mode: replicated-job}\n    restart_policy: x\n", "services.w.restart_policy", "not a Compose key"),
    ("deploy: {mode: sometimes}", "services.w.deploy.mode", "global-job"),
])
def test_a_wrong_job_is_named_at_its_key_path(snippet, path, says):
    found = wrong(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {snippet}\n")
    assert any(p == path and says in m for p, m in found), found


@pytest.mark.parametrize(("snippet", "path"), [
    ("deploy: {mode: replicated-job}\n    healthcheck: {test: 'true'}", "services.w.healthcheck"),
    ("deploy: {mode: replicated-job, update_config: {parallelism: 2}}", "services.w.deploy.update_config"),
    ("deploy: {mode: replicated-job, restart_policy: {max_attempts: 0}}",
     "services.w.deploy.restart_policy.max_attempts"),
    ("deploy: {mode: replicated-job, restart_policy: {window: 1m}}", "services.w.deploy.restart_policy.window"),
])
def test_what_a_job_cannot_use_is_named_and_the_job_still_maps(snippet, path):
    c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {snippet}\n")
    assert c.invalid == () and path in paths(c) and c.specs["app_w"].mode == "job"


# -- top-level jobs ----------------------------------------------------------------------------
def job(text: str, **options):
    c = read("services: {}\njobs:\n  backup:\n    image: busybox\n    mem_limit: 16m\n" + text, **options)
    return c


def test_a_top_level_jobs_schedule_is_an_orion_cron_job():
    c = job("    command: [sh, -c, 'echo backup']\n    triggers: {schedule: ['0 3 * * *']}\n")
    spec = c.specs["app_backup"]
    assert (spec.mode, spec.stack, spec.task.command) == ("job", "app", ("sh", "-c", "echo backup"))
    assert spec.job == JobPolicy(schedule="0 3 * * *")
    assert any("UTC" in n for n in c.notes)  # Compose would take the platform's local time


def test_a_schedules_timezone_and_forbid_concurrency_map_and_the_extension_adds_to_them():
    c = job("    triggers:\n      manual: true\n      schedule: [{cron: '*/5 * * * *', timezone: Europe/Paris, "
            "concurrency: forbid, missed_fires: one}]\n    x-orion-job: {deadline: 10m}\n")
    assert (c.invalid, c.unsupported) == ((), ())
    assert c.specs["app_backup"].job == JobPolicy(schedule="*/5 * * * *", zone="Europe/Paris", deadline=600.0)


@pytest.mark.parametrize(("text", "path", "skips"), [
    ("    triggers: {manual: true}\n", "jobs.backup.triggers", True),
    ("    triggers: {schedule: ['0 3 * * *', '0 4 * * *']}\n", "jobs.backup.triggers.schedule[1]", False),
    ("    triggers: {schedule: [{cron: '0 3 * * *', concurrency: queue}]}\n",
     "jobs.backup.triggers.schedule[0].concurrency", False),
    ("    triggers: {schedule: [{cron: '0 3 * * *', missed_fires: skip}]}\n",
     "jobs.backup.triggers.schedule[0].missed_fires", False),
    ("    triggers: {schedule: ['0 3 * * *']}\n    healthcheck: {test: 'true'}\n", "jobs.backup.healthcheck", False),
    ("    triggers: {schedule: ['0 3 * * *']}\n    depends_on: [db]\n", "jobs.backup.depends_on", False),
])
def test_what_a_top_level_job_says_that_orion_cannot_honour_is_named(text, path, skips):
    c = job(text)
    assert c.invalid == () and path in paths(c), c.unsupported
    assert ("app_backup" not in c.specs) == skips and (c.left_out == ("backup",)) == skips


@pytest.mark.parametrize(("text", "path"), [
    ("    triggers: {schedule: ['61 * * * *']}\n", "jobs.backup.triggers.schedule[0]"),
    ("    triggers: {schedule: [{cron: '0 3 * * *', timezone: Mars/Olympus}]}\n",
     "jobs.backup.triggers.schedule[0].timezone"),
    ("    triggers: {schedule: [{cron: '0 3 * *'}]}\n", "jobs.backup.triggers.schedule[0].cron"),
    ("    triggers: {schedule: ['0 3 * * *']}\n    x-orion-job: {retries: -1}\n", "jobs.backup.x-orion-job.retries"),
    ("    triggers: {schedule: ['0 3 * * *']}\n    cap_add: [NOPE]\n", "jobs.backup.cap_add[0]"),
])
def test_a_wrong_top_level_job_is_named_at_its_key_path(text, path):
    c = job(text)
    assert "app_backup" not in c.specs and [i.path for i in c.invalid] == [path], c.invalid


def test_a_top_level_job_without_memory_names_mem_limit_and_a_name_shared_with_a_service_is_refused():
    c = read("services: {}\njobs:\n  b: {image: busybox, triggers: {schedule: ['@daily']}}\n")
    assert [i.path for i in c.invalid] == ["jobs.b.mem_limit"]
    c = read("services:\n  b: {image: busybox, mem_limit: 16m}\n"
             "jobs:\n  b: {image: busybox, mem_limit: 16m, triggers: {schedule: ['@daily']}}\n")
    assert [i.path for i in c.invalid] == ["jobs.b"] and "share its name" in c.invalid[0].message


# -- placement ---------------------------------------------------------------------------------
def test_constraints_orion_reads_are_constraints_and_label_equality_stays_a_node_selector():
    spec = one("deploy:\n      placement:\n        constraints: [node.labels.zone == a, node.labels.zone!=b, "
               "node.hostname != web-3, node.platform.os == linux, node.platform.arch==x86_64, "
               "'engine.version >= 20.10', node.labels.ssd exists]")
    assert dict(spec.task.node_selectors) == {"zone": "a"}
    assert [str(c) for c in spec.task.constraints] == [
        "engine.version >= 20.10", "node.hostname != web-3", "node.labels.ssd exists", "node.labels.zone != b",
        "node.platform.arch == x86_64", "node.platform.os == linux"]


def test_spread_and_max_replicas_per_node_map():
    spec = one("deploy:\n      replicas: 4\n      placement: {preferences: [{spread: node.labels.zone}], "
               "max_replicas_per_node: 2}")
    assert (spec.task.spread, spec.task.max_per_node, spec.count) == ("zone", 2, 4)
    assert one("deploy: {placement: {max_replicas_per_node: 0}}").task.max_per_node == 0  # Swarm: no limit


@pytest.mark.parametrize(("deploy", "path"), [
    ("{placement: {constraints: ['node.labels.zone ~ a']}}", "services.w.deploy.placement.constraints[0]"),
    ("{placement: {constraints: ['node.colour == red']}}", "services.w.deploy.placement.constraints[0]"),
    ("{placement: {constraints: ['node.labels.z == a', 'node.labels.z == b']}}",
     "services.w.deploy.placement.constraints[1]"),
    ("{placement: {max_replicas_per_node: many}}", "services.w.deploy.placement.max_replicas_per_node"),
    ("{placement: {max_replicas_per_node: -1}}", "services.w.deploy.placement.max_replicas_per_node"),
    ("{placement: {preferences: [{spread: 'node.labels.'}]}}", "services.w.deploy.placement.preferences[0].spread"),
    ("{mode: global, placement: {max_replicas_per_node: 1}}", "services.w.deploy.placement.max_replicas_per_node"),
    ("{mode: global, placement: {preferences: [{spread: node.labels.zone}]}}",
     "services.w.deploy.placement.preferences[0].spread"),
])
def test_a_wrong_placement_is_named_at_its_key_path(deploy, path):
    found = wrong(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    deploy: {deploy}\n")
    assert [p for p, _ in found] == [path], found


# -- a re-deploy changes nothing ---------------------------------------------------------------
STACK = """
services:
  agent:
    image: busybox
    mem_limit: 16m
    deploy: {mode: global, placement: {constraints: [node.platform.os == linux]}}
  migrate:
    image: busybox
    mem_limit: 16m
    deploy: {mode: replicated-job, replicas: 3, restart_policy: {max_attempts: 1}}
  web:
    image: busybox
    mem_limit: 16m
    deploy:
      replicas: 3
      placement: {constraints: [node.labels.zone != c], preferences: [{spread: node.labels.zone}],
                  max_replicas_per_node: 1}
jobs:
  backup:
    image: busybox
    mem_limit: 16m
    triggers: {schedule: [{cron: '0 3 * * *', timezone: UTC}]}
    x-orion-job: {deadline: 30m}
"""


def test_the_same_file_planned_against_what_the_cluster_shows_changes_nothing():
    c = read(STACK)
    assert c.invalid == () and set(c.specs) == {"app_agent", "app_migrate", "app_web", "app_backup"}
    # What GET /stacks/<name> answers is each spec written as its PUT body, read back by the CLI.
    shown = {n: Running(n, 1, parse_service_request(n, spec_body(s))) for n, s in c.specs.items()}
    again = plan("app", read(STACK).specs, shown, {}, prune=True)
    assert {s.action for s in again.steps} == {Action.UNCHANGED} and not again.changes
