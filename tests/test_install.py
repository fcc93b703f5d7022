"""test_install - where `meson install` puts things: run into a temporary
--destdir (nothing is built: --no-rebuild), then the daemon must be in
sbindir, the tools users run (kvctl, kvbench) together in bindir, the man
pages in their sections, and the systemd unit must start the installed
daemon.

    test_install.py BUILD_DIR PREFIX BINDIR SBINDIR MANDIR
"""

import os
import subprocess
import sys
import tempfile


def main(build, prefix, bindir, sbindir, mandir):
    with tempfile.TemporaryDirectory(prefix="kvstore-install.") as dest:
        p = subprocess.run(["meson", "install", "-C", build, "--destdir", dest,
                            "--no-rebuild", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        if p.returncode != 0:
            print("meson install exited %d:\n%s" % (p.returncode, p.stdout))
            return 1
        where = {}   # file name -> the absolute directory it was installed in
        for root, _, files in os.walk(dest):
            for name in files:
                where.setdefault(name, []).append("/" + os.path.relpath(root, dest))
        for name, dirs in sorted(where.items()):
            print("%-28s %s" % (name, " ".join(dirs)))

        def at(d):
            return [d if os.path.isabs(d) else os.path.join(prefix, d)]

        expect = {
            "kvstored": at(sbindir),
            "kvctl": at(bindir),
            "kvbench": at(bindir),
            "kvstored.8": at(os.path.join(mandir, "man8")),
            "kvctl.1": at(os.path.join(mandir, "man1")),
        }
        wrong = ["%s in %s, expected %s" % (name, where.get(name), dirs)
                 for name, dirs in expect.items() if where.get(name) != dirs]
        unit = where.get("kvstored.service")
        if not unit:
            wrong.append("no kvstored.service installed")
        else:
            with open(os.path.join(dest, unit[0].lstrip("/"), "kvstored.service")) as f:
                execstart = [line for line in f if line.startswith("ExecStart=")]
            daemon = os.path.join(at(sbindir)[0], "kvstored")
            if len(execstart) != 1 or not execstart[0].startswith("ExecStart=" + daemon + " "):
                wrong.append("the unit's %r does not start %s" % (execstart, daemon))
    for line in wrong:
        print("wrong: " + line)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
