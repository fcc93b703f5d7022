"""package_test.py - the Python client as a user installs it: into a fresh
virtual environment with `pip install --no-index --no-build-isolation`, no
network, then a call to a live kvstored from outside the source tree, and
the project's LICENSE in the installed distribution's metadata.

The venv has --system-site-packages, since python3-protobuf (and the
wheel and setuptools that build it) come from Debian. The install must
carry kvstore/v1/kv_pb2.py, which setup.py generates with protoc from
proto/kvstore/v1/kv.proto. pip builds in the folder it is given, leaving
build/ and kvstore.egg-info there, so the folder is first copied, with the
proto beside it as in the repository, into a temporary directory.

Exit 77 (skipped) when a tool the install needs is missing: protoc
(protobuf-compiler), venv's ensurepip (python3-venv), wheel (python3-wheel).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from kvstored import Server

SKIPPED = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TIMEOUT = 300

# Runs in the venv, from a directory holding no kvstore sources.
CALL = """
import json, sys
import kvstore
from kvstore.v1 import kv_pb2
with kvstore.Client(sys.argv[1], timeout=10) as c:
    c.set(b"pkg-k", b"from a venv")
    print(json.dumps({"kvstore": kvstore.__file__, "kv_pb2": kv_pb2.__file__,
                      "value": c.get(b"pkg-k").decode()}))
"""


def clean_env():
    """Our environment without what would let the venv see the source tree
    or the meson build dir (PYTHONPATH), or this machine's pip settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME",
                                                       "KVSTORE_PROTO_DIR")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1")
    return env


def run(argv, **kw):
    """Runs ARGV to completion; returns its stdout; exits 1 with its output
    when it fails."""
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=TIMEOUT, env=clean_env(), **kw)
    if done.returncode != 0:
        sys.exit("%s exited %d:\n%s" % (" ".join(argv), done.returncode,
                                        done.stdout.decode(errors="replace")))
    return done.stdout.decode()


def missing_tool():
    """What the install needs and this machine lacks, or None."""
    if shutil.which("protoc") is None:
        return "protoc (Debian: protobuf-compiler)"
    for module, package in (("ensurepip", "python3-venv"), ("wheel", "python3-wheel")):
        probe = subprocess.run([sys.executable, "-c", "import " + module],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode != 0:
            return "the %s module (Debian: %s)" % (module, package)
    return None


def main():
    missing = missing_tool()
    if missing:
        print("python-client-package: %s not found: skipped" % missing)
        return SKIPPED
    with tempfile.TemporaryDirectory(prefix="kvstore-py-package.") as tmp:
        src = os.path.join(tmp, "src")
        shutil.copytree(HERE, os.path.join(src, "client", "python"),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                      "*_pb2.py", "tests"))
        shutil.copytree(os.path.join(REPO, "proto"), os.path.join(src, "proto"))
        venv = os.path.join(tmp, "venv")
        run([sys.executable, "-m", "venv", "--system-site-packages", venv])
        py = os.path.join(venv, "bin", "python")
        print(run([py, "-m", "pip", "install", "--no-index", "--no-build-isolation",
                   "--no-cache-dir", os.path.join(src, "client", "python")]))

        server = Server()
        try:
            answer = json.loads(run([py, "-c", CALL, server.endpoint], cwd=tmp))
        finally:
            status = server.stop()
        assert status == 0, "kvstored exited with %s after SIGTERM" % status

        site = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
        expected = {
            "kvstore": os.path.join(site, "kvstore", "__init__.py"),
            "kv_pb2": os.path.join(site, "kvstore", "v1", "kv_pb2.py"),
            "value": "from a venv",
        }
        assert answer == expected, "got %r, expected %r" % (answer, expected)
        # The licence travels with the install (client/python/LICENSE is a
        # link to the repository's).
        licence = run([py, "-c", "import importlib.metadata as m; "
                       "print(m.distribution('kvstore').read_text('LICENSE'))"])
        with open(os.path.join(REPO, "LICENSE")) as f:
            assert licence.strip() == f.read().strip(), "the install's LICENSE: %r" % licence
        print("installed in a venv and called kvstored: %s" % json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
