# Shared by the CLI test scripts (sourced): check runs a command and compares its exit code; its stdout and stderr
# stay in $work/out and $work/err for further checks. Counts in $n (commands) and $fail (failures).
fail=0 n=0
check() { # label, expected exit code, command...
  local label=$1 want=$2; shift 2
  n=$((n + 1))
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL $label: exit $got, expected $want"; sed 's/^/  /' "$work/err" | tail -5; fail=$((fail + 1))
  else
    echo "ok   $label"
  fi
}
mpirun2() { # command...: under mpirun -np 2, as root too; OpenMPI keeps memory past MPI_Finalize by design, so
  # no leak report under ASan
  env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    mpirun -np 2 --oversubscribe "$@"
}
