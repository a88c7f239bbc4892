"""The production-like stack of ``stack.py`` as fixtures: one PostgreSQL cluster of the tests'
own per session, a Redis and fresh processes per test."""

import pytest

from core.tests.stack import OwnPostgres, OwnRedis, manage, portal_env, start_web, start_worker

PASSWORD = "fault-tests-password-1"


@pytest.fixture(scope="session")
def own_postgres(tmp_path_factory):
    """The cluster, with a migrated database holding one admin: the template of each test's."""
    own = OwnPostgres()
    env = portal_env(database_url=own.url, broker_url="redis://127.0.0.1:1/0", files=tmp_path_factory.mktemp("files"))
    manage(env, "migrate", "--noinput")
    manage(env | {"PORTAL_PASSWORD": PASSWORD}, "add_user", "ops-admin", "--role", "admin")
    yield own
    own.close()


@pytest.fixture
def postgres(own_postgres, request):
    """A fresh database of this test's own, copied from the template."""
    own_postgres.copy_database(f"portal_{request.node.name[:40].lower()}_{id(request)}")
    return own_postgres


@pytest.fixture
def redis(tmp_path):
    own = OwnRedis(tmp_path)
    yield own
    own.close()


@pytest.fixture
def stack(postgres, redis, tmp_path):
    """Settings for this test's processes; every process it starts is stopped at the end."""
    started = []

    class Stack:
        env = portal_env(database_url=postgres.url, broker_url=redis.url, files=tmp_path)

        def configure(self, **extra):
            self.env = self.env | extra

        def web(self, name="web"):
            web = start_web(self.env, tmp_path, name)
            started.append(web.process)
            return web

        def worker(self, name="worker"):
            worker = start_worker(self.env, tmp_path, name)
            started.append(worker)
            return worker

    yield Stack()
    for process in started:
        process.stop()
