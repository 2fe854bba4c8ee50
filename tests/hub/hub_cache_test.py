#!/usr/bin/python3
"""`mitten -m ORG/NAME` through a Hugging Face cache laid out by hand as huggingface_hub lays it out.

    hub_cache_test.py MITTEN WORKDIR SOURCE_DIR

Two tiny checkpoints (tests/ref/qwen2_vl_ref.py make-checkpoint, seeds 1 and 2) become two commits of one repo:

    <cache>/models--test-org--tiny-vl/
        blobs/<sha256 of a .safetensors, git blob sha1 of the rest>
        refs/main -> commit A     refs/v2 -> commit B     refs/refs/pr/1 -> commit B     (40 hex digits, no newline)
        snapshots/<A>/<file> -> ../../blobs/<hash>        snapshots/<B>/<file> -> ../../blobs/<hash>

Then `mitten info` and `mitten logits` (and preprocess) through it: with HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and
the ~/.cache default, their precedence, --revision by branch, tag-like ref, pull-request ref, full and short commit
hash, MITTEN_MODEL, a folder that shadows the repo id, and the failures (absent repo, absent ref, a ref to a
missing snapshot, a ref file that is not a commit, hostile ids and revisions, no cache at all), each with its
message. The logits through the cache must equal those of the checkpoint folder, byte for byte, and the cache must
be left exactly as it was.
"""

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np

PY = "/usr/bin/python3"
REPO = "test-org/tiny-vl"
FOLDER = "models--test-org--tiny-vl"
COMMIT_A = hashlib.sha1(b"mitten test commit A").hexdigest()
COMMIT_B = hashlib.sha1(b"mitten test commit B").hexdigest()
COMMIT_GONE = hashlib.sha1(b"mitten test commit that was never downloaded").hexdigest()

mitten, work, src = (os.path.abspath(a) for a in sys.argv[1:4])
ref = os.path.join(src, "tests", "ref", "qwen2_vl_ref.py")
failures = []
count = 0


def setup(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        sys.exit("FAILED: %s\n%s" % (" ".join(cmd), r.stdout))


def blob_name(fname, data):
    if fname.endswith(".safetensors"):  # LFS files: their sha256
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # the rest: git's blob id


def lay_out(cache, repo_folder, snapshots, refs):
    """snapshots: {commit: checkpoint folder}; refs: {name: commit}."""
    repo = os.path.join(cache, repo_folder)
    for commit, folder in snapshots.items():
        snap = os.path.join(repo, "snapshots", commit)
        os.makedirs(snap)
        os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
        for fname in sorted(os.listdir(folder)):
            with open(os.path.join(folder, fname), "rb") as f:
                data = f.read()
            blob = blob_name(fname, data)
            path = os.path.join(repo, "blobs", blob)
            if not os.path.exists(path):
                with open(path, "wb") as f:
                    f.write(data)
            os.symlink(os.path.join("..", "..", "blobs", blob), os.path.join(snap, fname))
    for name, commit in refs.items():
        path = os.path.join(repo, "refs", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(commit)
    return repo


def tree_state(root):
    """Every path under root with its kind, size, mtime and link target: equal before and after means untouched."""
    state = []
    for d, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            state.append((p, st.st_mode, st.st_size, st.st_mtime_ns, os.readlink(p) if os.path.islink(p) else None))
    return sorted(state)


def env_with(**kv):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "MITTEN_MODEL")}
    env["HOME"] = os.path.join(work, "home-empty")
    env.update(kv)
    return env


def check(label, want_rc, args, env, cwd=None, out_has=(), err_has=()):
    global count
    count += 1
    r = subprocess.run([mitten] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       cwd=cwd or deep)
    bad = []
    if r.returncode != want_rc:
        bad.append("exit %d, expected %d" % (r.returncode, want_rc))
    bad += ["stdout lacks %r" % s for s in out_has if s not in r.stdout]
    bad += ["stderr lacks %r" % s for s in err_has if s not in r.stderr]
    if bad:
        failures.append(label)
        print("FAIL %s: %s" % (label, "; ".join(bad)))
        print("  stdout: " + r.stdout.strip().replace("\n", "\n          ")[:1500])
        print("  stderr: " + r.stderr.strip().replace("\n", "\n          ")[:1500])
    else:
        print("ok   " + label)
    return r


def expect(label, cond, detail=""):
    global count
    count += 1
    print(("ok   " if cond else "FAIL ") + label + ("" if cond else ": " + detail))
    if not cond:
        failures.append(label)


def logits(label, model, env, extra=(), want="", cwd=None):
    out = os.path.join(work, "logits-%d.npy" % count)
    check(label, 0, ["logits", "-m", model, "--ids", ids, "--out", out, "--threads", "2"] + list(extra), env, cwd)
    got = np.load(out) if os.path.exists(out) else None
    if want:
        expect(label + ": the logits of checkpoint " + want, got is not None and np.array_equal(got, ref_logits[want]))
    return got


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
ckpt = {}
for name, seed in (("A", 1), ("B", 2)):
    ckpt[name] = os.path.join(work, "ckpt-" + name)
    setup([PY, ref, "make-checkpoint", "--variant", "qwen2_5_vl", "--seed", str(seed), "--out", ckpt[name]])
setup([PY, ref, "make-inputs", "--case", "text", "--model", ckpt["A"], "--out", os.path.join(work, "inputs")])
ids = os.path.join(work, "inputs", "ids.npy")
deep = os.path.join(work, "cwd", "a", "b", "c")  # where ../../etc does not exist
os.makedirs(deep)
os.makedirs(os.path.join(work, "home-empty"))
os.makedirs(os.path.join(work, "pre"))

snapshots = {COMMIT_A: ckpt["A"], COMMIT_B: ckpt["B"]}
refs = {"main": COMMIT_A, "v2": COMMIT_B, "refs/pr/1": COMMIT_B, "gone": COMMIT_GONE}
hub = os.path.join(work, "hub-cache")
repo = lay_out(hub, FOLDER, snapshots, refs)
lay_out(hub, "models--test-org--evil", {COMMIT_A: ckpt["A"]}, {"main": "../../../../etc"})
hf_home = os.path.join(work, "hf-home")
lay_out(os.path.join(hf_home, "hub"), FOLDER, snapshots, refs)
xdg = os.path.join(work, "xdg")
lay_out(os.path.join(xdg, "huggingface", "hub"), FOLDER, snapshots, refs)
home = os.path.join(work, "home")
lay_out(os.path.join(home, ".cache", "huggingface", "hub"), FOLDER, snapshots, refs)
empty_cache = os.path.join(work, "empty-cache")
os.makedirs(empty_cache)
snap_a = os.path.join(repo, "snapshots", COMMIT_A)
expect("the snapshot holds symlinks into ../../blobs",
       os.readlink(os.path.join(snap_a, "model.safetensors")).startswith("../../blobs/"))
before = tree_state(work)

ref_logits = {}
for name in ("A", "B"):
    out = os.path.join(work, "ref-%s.npy" % name)
    check("logits of folder " + name, 0, ["logits", "-m", ckpt[name], "--ids", ids, "--out", out, "--threads", "2"],
          env_with())
    ref_logits[name] = np.load(out)
expect("checkpoints A and B differ", not np.array_equal(ref_logits["A"], ref_logits["B"]))

# The cache folder, as huggingface_hub chooses it
e = env_with(HF_HUB_CACHE=hub)
check("info -m ORG/NAME with HF_HUB_CACHE", 0, ["info", "-m", REPO], e,
      out_has=["model         " + snap_a + "\n", "architecture  qwen2.5-vl"], err_has=[REPO + " at main: " + snap_a])
logits("logits -m ORG/NAME with HF_HUB_CACHE", REPO, e, want="A")
check("preprocess -m ORG/NAME", 0, ["preprocess", "-m", REPO, "--image", os.path.join(src, "docs", "example.png"),
                                    "--out-dir", os.path.join(work, "pre")], e)
e = env_with(HF_HOME=hf_home)
check("info -m ORG/NAME with HF_HOME", 0, ["info", "-m", REPO], e,
      out_has=["model         " + os.path.join(hf_home, "hub", FOLDER, "snapshots", COMMIT_A)])
logits("logits -m ORG/NAME with HF_HOME", REPO, e, want="A")
check("info -m ORG/NAME with XDG_CACHE_HOME", 0, ["info", "-m", REPO], env_with(XDG_CACHE_HOME=xdg),
      out_has=[os.path.join(xdg, "huggingface", "hub", FOLDER)])
check("info -m ORG/NAME from ~/.cache/huggingface/hub", 0, ["info", "-m", REPO], env_with(HOME=home),
      out_has=[os.path.join(home, ".cache", "huggingface", "hub", FOLDER)])
check("HF_HUB_CACHE before HF_HOME", 0, ["info", "-m", REPO], env_with(HF_HUB_CACHE=hub, HF_HOME=empty_cache),
      out_has=[snap_a])
check("HF_HUB_CACHE before HF_HOME (the repo only under HF_HOME)", 1, ["info", "-m", REPO],
      env_with(HF_HUB_CACHE=empty_cache, HF_HOME=hf_home),
      err_has=["not in the Hugging Face cache " + empty_cache + " (from $HF_HUB_CACHE)"])
check("HUGGINGFACE_HUB_CACHE (legacy) before HF_HOME", 0, ["info", "-m", REPO],
      env_with(HUGGINGFACE_HUB_CACHE=hub, HF_HOME=empty_cache), out_has=[snap_a])
check("HF_HOME before XDG_CACHE_HOME", 0, ["info", "-m", REPO], env_with(HF_HOME=hf_home, XDG_CACHE_HOME=work),
      out_has=[os.path.join(hf_home, "hub")])

# --revision: a branch or tag, a pull-request ref, a commit hash in full or its start
e = env_with(HF_HUB_CACHE=hub)
got = logits("--revision v2 (a branch)", REPO, e, ["--revision", "v2"], want="B")
logits("--revision refs/pr/1", REPO, e, ["--revision", "refs/pr/1"], want="B")
logits("--revision COMMIT (40 hex digits)", REPO, e, ["--revision", COMMIT_B], want="B")
logits("--revision COMMIT (its first 10 digits)", REPO, e, ["--revision", COMMIT_B[:10]], want="B")
logits("--revision main", REPO, e, ["--revision", "main"], want="A")
out = os.path.join(work, "logits-first.npy")
check("--revision before -m", 0, ["logits", "--revision", "v2", "--ids", ids, "-m", REPO, "--out", out], e)
expect("--revision before -m: the logits of checkpoint B", np.array_equal(np.load(out), ref_logits["B"]))
check("info --revision COMMIT names the snapshot", 0, ["info", "-m", REPO, "--revision", COMMIT_B], e,
      out_has=[os.path.join(repo, "snapshots", COMMIT_B)])

# MITTEN_MODEL takes a repo id too; a folder of the id's name wins over the cache
check("MITTEN_MODEL=ORG/NAME without -m", 0, ["info"], env_with(HF_HUB_CACHE=hub, MITTEN_MODEL=REPO),
      out_has=["model         " + snap_a + "\n"])
check("MITTEN_MODEL=ORG/NAME --revision v2", 0, ["info", "--revision", "v2"],
      env_with(HF_HUB_CACHE=hub, MITTEN_MODEL=REPO), out_has=[os.path.join(repo, "snapshots", COMMIT_B)])
shadow = os.path.join(work, "shadow")
shutil.copytree(ckpt["B"], os.path.join(shadow, "test-org", "tiny-vl"))
check("a folder named ORG/NAME wins over the cache", 0, ["info", "-m", REPO], e, cwd=shadow,
      out_has=["model         test-org/tiny-vl\n"])
logits("a folder named ORG/NAME wins: its logits", REPO, e, want="B", cwd=shadow)

# Failures, each with its message
check("absent repo", 1, ["info", "-m", "test-org/absent"], e,
      err_has=["test-org/absent: no such folder, and not in the Hugging Face cache " + hub,
               "no folder models--test-org--absent there", "mitten downloads nothing",
               "hf download test-org/absent", "huggingface-cli download test-org/absent"])
check("absent plain NAME", 1, ["logits", "-m", "absent-model", "--ids", ids, "--out", os.path.join(work, "x.npy")], e,
      err_has=["no folder models--absent-model there"])
check("absent ref", 1, ["info", "-m", REPO, "--revision", "v3"], e,
      err_has=["revision v3 is not in the Hugging Face cache", os.path.join(repo, "refs", "v3"), "main", "v2",
               "hf download test-org/tiny-vl --revision v3"])
check("absent commit", 1, ["info", "-m", REPO, "--revision", COMMIT_GONE], e,
      err_has=["is commit " + COMMIT_GONE + ", but its snapshot", "is not in the cache"])
check("ref to a snapshot never downloaded", 1, ["info", "-m", REPO, "--revision", "gone"], e,
      err_has=["at gone is commit " + COMMIT_GONE])
check("a ref that is not a commit", 1, ["info", "-m", "test-org/evil"], e, err_has=["expected a commit hash"])
check("hostile id ../../etc", 1, ["info", "-m", "../../etc"], e,
      err_has=["../../etc: no such folder, and not a Hugging Face repo id", '".." and "--" are not allowed'])
check("an absolute path is never a repo id", 1, ["info", "-m", os.path.join(work, "nowhere")], e,
      err_has=[os.path.join(work, "nowhere", "config.json")])
check("hostile id test-org/..", 1, ["info", "-m", "test-org/.."], e, err_has=["not a Hugging Face repo id"])
check("hostile id ORG--NAME", 1, ["info", "-m", "test-org--tiny-vl"], e, err_has=["not a Hugging Face repo id"])
check("hostile id with two slashes", 1, ["info", "-m", "a/b/c"], e, err_has=["with one '/' at most"])
check("hostile revision", 2, ["info", "-m", REPO, "--revision", "../../../../etc"], e,
      err_has=['revision "../../../../etc" is not a branch, tag or commit name'])
check("hostile revision .hidden", 2, ["info", "-m", REPO, "--revision", "refs/.x"], e,
      err_has=["is not a branch, tag or commit name"])
check("--revision with a folder", 2, ["info", "-m", ckpt["A"], "--revision", "main"], e,
      err_has=["is a path, not a Hugging Face repo id (a revision picks a version of a repo id only)"])
check("--revision without -m", 2, ["info", "--revision", "v2"], e, err_has=["give it with -m ORG/NAME"])
check("--revision without a value", 2, ["info", "-m", REPO, "--revision"], e,
      err_has=["option --revision needs a value"])
check("no cache folder at all", 1, ["info", "-m", REPO], env_with(),
      err_has=["no Hugging Face cache at " + os.path.join(work, "home-empty", ".cache", "huggingface", "hub"),
               "$HOME, the default", "mitten downloads nothing"])
check("MITTEN_MODEL names an absent repo", 1, ["info"], env_with(HF_HUB_CACHE=hub, MITTEN_MODEL="test-org/absent"),
      err_has=["MITTEN_MODEL=test-org/absent: no such folder, and not in the Hugging Face cache"])
check("--help says -m takes a repo id", 0, ["logits", "--help"], e, out_has=["Hugging Face repo id (ORG/NAME)"])

caches = (hub + os.sep, hf_home + os.sep, xdg + os.sep, home + os.sep)
expect("the caches are left as they were", [s for s in tree_state(work) if s[0].startswith(caches)] ==
       [s for s in before if s[0].startswith(caches)])
print("%d checks, %d failed" % (count, len(failures)))
sys.exit(1 if failures else 0)
