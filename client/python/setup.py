"""setup.py - the one step pyproject.toml cannot say: run protoc at build time.

Writes kvstore/v1/kv_pb2.py into the build (or, for an editable install,
the source tree) from ../../proto/kvstore/v1/kv.proto, or from the proto
tree named by $KVSTORE_PROTO_DIR. Needs protoc (Debian: protobuf-compiler).
"""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = "kvstore/v1/kv.proto"


def proto_dir():
    for d in (os.environ.get("KVSTORE_PROTO_DIR"), os.path.join(HERE, "..", "..", "proto")):
        if d and os.path.isfile(os.path.join(d, PROTO)):
            return os.path.abspath(d)
    raise SystemExit("kvstore: cannot find %s; build from the kvstore source tree "
                     "or set KVSTORE_PROTO_DIR to the directory holding it" % PROTO)


class BuildPyWithProto(build_py):
    def run(self):
        super().run()
        protoc = shutil.which("protoc")
        if protoc is None:
            raise SystemExit("kvstore: protoc not found (Debian: apt-get install protobuf-compiler)")
        out = HERE if getattr(self, "editable_mode", False) else self.build_lib
        subprocess.check_call([protoc, "--proto_path=" + proto_dir(), "--python_out=" + out, PROTO])


setup(cmdclass={"build_py": BuildPyWithProto})
