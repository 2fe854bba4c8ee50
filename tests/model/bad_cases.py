"""What the bad-input scripts of tests/model share: copies of a good checkpoint with one edit each, and `mitten`
runs that must either succeed or be refused cleanly (exit status 1, no signal, no hang, a message holding given
words)."""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import safetensors_io  # noqa: E402


def sh(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        sys.exit("setup failed: %s\n%s" % (" ".join(cmd), r.stdout))


class Runner:
    def __init__(self, mitten, work):
        self.mitten, self.work, self.failures, self.count = mitten, work, [], 0

    def variant(self, base, name, config=None, tensors=None, tokenizer=None):
        """A copy of folder base called name, with config.json / tokenizer.json edited by the functions given (each
        changes the parsed object in place) and the tensors of model.safetensors by tensors(dict)."""
        d = os.path.join(self.work, name)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base, d)
        for fname, fn in (("config.json", config), ("tokenizer.json", tokenizer)):
            if fn:
                path = os.path.join(d, fname)
                obj = json.load(open(path))
                fn(obj)
                json.dump(obj, open(path, "w"))
        if tensors:
            path = os.path.join(d, "model.safetensors")
            t = safetensors_io.read_file(path)
            tensors(t)
            safetensors_io.write_file(path, t)
        return d

    def run(self, args):
        """mitten ARGS; None when it hangs."""
        try:
            return subprocess.run([self.mitten] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return None

    def ok(self, label, args):
        self.count += 1
        r = self.run(args)
        if r is None or r.returncode:
            self.failures.append("%s: should succeed: %s" % (label, r.stdout.strip() if r else "hung"))
            return False
        print("ok   %s" % label)
        return True

    def refused(self, label, args, needles, code=1):
        """mitten ARGS must exit with code (1: refused input; 2: a bad option value) and a message holding needles."""
        self.count += 1
        r = self.run(args)
        if r is None:
            self.failures.append("%s: hung" % label)
            return
        msg = r.stdout.strip()
        missing = [n for n in needles if n not in msg]
        if r.returncode != code or missing:
            self.failures.append("%s: exit %d, message %r lacks %r" % (label, r.returncode, msg, missing))
        else:
            print("ok   %-34s %s" % (label, msg.splitlines()[-1][:110]))

    def report(self):
        for f in self.failures:
            print("FAIL " + f)
        print("%d cases, %d failed" % (self.count, len(self.failures)))
        sys.exit(1 if self.failures else 0)
