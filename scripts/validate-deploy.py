"""What scripts/validate-deploy checks beyond the Kubernetes schemas: that
deploy/job.yaml runs the Job it says it runs (N shards, Guaranteed QoS, one
pod per node, results on a shared volume), and that deploy/Containerfile
builds with the commands .ci/run runs and copies what allocbench needs.

Run from the workspace root by scripts/validate-deploy, with PyYAML (from the
kubernetes-validate install). Prints every problem found; exit code 1 if any.
"""

import glob
import re
import shlex
import sys
from fractions import Fraction
from pathlib import Path

import yaml

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}


def quantity(value):
    """A Kubernetes resource quantity ("2", "500m", "8Gi") as a number."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)([A-Za-z]*)", str(value).strip())
    if not m or (m.group(2) and m.group(2) not in SUFFIXES):
        raise ValueError(f"not a quantity: {value!r}")
    return Fraction(m.group(1)) * SUFFIXES.get(m.group(2), 1)


# --- The manifests -------------------------------------------------------

documents = []  # (file, document)
for path in sorted(glob.glob("deploy/*.yaml")):
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc is not None:
                documents.append((path, doc))

claims = {
    doc["metadata"]["name"]: (path, doc)
    for path, doc in documents
    if doc.get("kind") == "PersistentVolumeClaim"
}


def check_claims(where, pod_spec):
    """Every volume from a claim names a ReadWriteMany claim of deploy/."""
    for volume in pod_spec.get("volumes", []):
        claim = volume.get("persistentVolumeClaim", {}).get("claimName")
        if claim is None:
            continue
        if claim not in claims:
            problem(where, f"volume {volume['name']}: claim {claim} is not in deploy/")
        elif "ReadWriteMany" not in claims[claim][1]["spec"].get("accessModes", []):
            problem(
                where,
                f"claim {claim}: not ReadWriteMany, so pods on several nodes cannot all mount it",
            )


jobs = [(path, doc) for path, doc in documents if doc.get("kind") == "Job"]
if not jobs:
    problem("deploy/", "no Job manifest")
for path, job in jobs:
    where = f"{path} (Job {job['metadata']['name']})"
    spec = job["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"].get("metadata", {}).get("labels", {})
    containers = pod.get("containers", []) + pod.get("initContainers", [])

    if spec.get("completionMode") != "Indexed":
        problem(where, "completionMode is not Indexed: pods get no JOB_COMPLETION_INDEX")
    completions = spec.get("completions")
    if completions is None or spec.get("parallelism") != completions:
        problem(
            where,
            f"parallelism ({spec.get('parallelism')}) is not completions ({completions}): "
            "the shards would not all run at once",
        )
    for c in pod.get("containers", []):
        shards = {e["name"]: e.get("value") for e in c.get("env", [])}.get("SHARDS")
        command = " ".join(c.get("command", []) + c.get("args", []))
        if shards != str(completions):
            problem(
                where,
                f"container {c['name']}: SHARDS is {shards!r}, completions {completions}: "
                "shards would be run twice or not at all",
            )
        if "$JOB_COMPLETION_INDEX" not in command:
            problem(where, f"container {c['name']}: its command does not use $JOB_COMPLETION_INDEX")
    if pod.get("restartPolicy") != "Never":
        problem(where, "restartPolicy is not Never (podFailurePolicy needs it)")

    # Guaranteed QoS: every container's requests equal its limits, for CPU
    # and memory; whole CPUs (the static CPU manager pins only those).
    for c in containers:
        res = c.get("resources", {})
        for r in ("cpu", "memory"):
            req = res.get("requests", {}).get(r)
            lim = res.get("limits", {}).get(r)
            if req is None or lim is None or quantity(req) != quantity(lim):
                problem(
                    where,
                    f"container {c['name']}: {r} request {req} and limit {lim} differ "
                    "(not Guaranteed QoS)",
                )
        cpu = res.get("limits", {}).get("cpu")
        if cpu is not None and quantity(cpu).denominator != 1:
            problem(where, f"container {c['name']}: {cpu} CPUs is not a whole number")

    # One pod per node: a required anti-affinity on the pods' own label.
    terms = (
        pod.get("affinity", {})
        .get("podAntiAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", [])
    )
    if not any(
        t.get("topologyKey") == "kubernetes.io/hostname"
        and t.get("labelSelector", {}).get("matchLabels")
        and t["labelSelector"]["matchLabels"].items() <= labels.items()
        for t in terms
    ):
        problem(
            where,
            "no required pod anti-affinity on kubernetes.io/hostname that selects the "
            "Job's own pod labels: two shards could share a node",
        )

    names = {c["name"] for c in pod.get("containers", [])}
    for rule in spec.get("podFailurePolicy", {}).get("rules", []):
        name = rule.get("onExitCodes", {}).get("containerName")
        if name is not None and name not in names:
            problem(where, f"podFailurePolicy names container {name}, which the pod has not")

    mounts = {m["name"] for c in containers for m in c.get("volumeMounts", [])}
    if not any(
        v["name"] in mounts and "persistentVolumeClaim" in v for v in pod.get("volumes", [])
    ):
        problem(where, "no volume from a claim is mounted: the results would go with the pods")
    check_claims(where, pod)

for path, doc in documents:
    if doc.get("kind") == "Pod":
        check_claims(f"{path} (Pod {doc['metadata']['name']})", doc["spec"])


# --- The Containerfile ---------------------------------------------------

containerfile = Path("deploy/Containerfile")
ci_lines = {line.strip() for line in Path(".ci/run").read_text().splitlines()}

instructions = []  # (instruction, arguments), continuation lines joined
pending = ""
for line in containerfile.read_text().splitlines():
    if line.lstrip().startswith("#") or (not line.strip() and not pending):
        continue
    if line.rstrip().endswith("\\"):
        pending += line.rstrip()[:-1] + " "
        continue
    full = (pending + line).strip()
    pending = ""
    word, _, rest = full.partition(" ")
    instructions.append((word.upper(), rest.strip()))

froms = [args.split()[0] for word, args in instructions if word == "FROM"]
rust_version = re.search(
    r'^rust-version\s*=\s*"([0-9.]+)"', Path("Cargo.toml").read_text(), re.M
).group(1)
builder = froms[0] if froms else ""
m = re.fullmatch(r"(?:docker\.io/library/)?rust:([0-9.]+)-(\w+)", builder)
if not m or m.group(1) != rust_version:
    problem(
        containerfile,
        f"the builder is {builder!r}, not rust:{rust_version}-<debian> "
        f"(the workspace's rust-version is {rust_version})",
    )
runtime = froms[-1] if froms else ""
if not m or not re.fullmatch(rf"(?:docker\.io/library/)?debian:{m.group(2)}-slim", runtime):
    problem(
        containerfile,
        f"the runtime image {runtime!r} is not the builder's Debian release "
        "(the binary needs the glibc it was linked against)",
    )

# Every build step that runs the project's scripts or cargo is a line of
# .ci/run, so that CI runs what the image build runs.
steps = []
for word, args in instructions:
    if word != "RUN":
        continue
    for segment in re.split(r"&&|\|\||;", args):
        segment = segment.strip()
        if "scripts/" in segment or re.search(r"\bcargo\b", segment):
            steps.append(segment)
            if segment not in ci_lines:
                problem(containerfile, f"RUN {segment!r} is not a command of .ci/run")
for needed in ("bash scripts/install-allocators", "cargo build --release"):
    if needed not in steps:
        problem(containerfile, f"no RUN {needed!r}")

# The runtime stage takes the binary and every preload library the
# workspace builds (allocbench looks for them next to its executable).
copied = set()
for word, args in instructions:
    if word != "COPY":
        continue
    words = shlex.split(args)
    from_builder = any(w.startswith("--from=") for w in words)
    sources = [w for w in words if not w.startswith("--")][:-1]
    if from_builder:
        copied.update(Path(s).name for s in sources)
    else:
        for s in sources:
            if s != "." and not Path(s).exists():
                problem(containerfile, f"COPY {s}: no such file in the workspace")
libraries = []
for manifest in sorted(glob.glob("preload/*/Cargo.toml")):
    text = Path(manifest).read_text()
    lib = re.search(r"^\[lib\]\s*\n(?:[^\[]*\n)*?name\s*=\s*\"(\w+)\"", text, re.M)
    if lib and "cdylib" in text:
        libraries.append(f"lib{lib.group(1)}.so")
if len(libraries) < 3:
    problem("preload/", f"found only {libraries} as preload libraries")
for needed in ["allocbench"] + libraries:
    if needed not in copied:
        problem(containerfile, f"{needed} is not copied from the builder")

if problems:
    for p in problems:
        print(f"validate-deploy: {p}", file=sys.stderr)
    sys.exit(1)
print(
    f"validate-deploy: {len(documents)} manifests and the Containerfile agree "
    f"(Job, Guaranteed QoS, one pod per node, the claim; RUN {steps} in .ci/run; "
    f"copies {sorted(copied)})"
)
