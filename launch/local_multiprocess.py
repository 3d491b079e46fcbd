"""Starts one training run as N processes on this machine (CPU), as a multi-host job would.

    python launch/local_multiprocess.py --num_processes=2 -- \
        --config=configs/dcgan.py --workdir=runs/dcgan_2proc

Every process runs `python -m cnngen_jax.main` with the given arguments plus the coordinator
address, process count and its own index. Output lines are prefixed with the process index. The
launcher exits with the first non-zero exit code (and stops the other processes) or 0. SIGTERM
to the launcher reaches every process, as a preemption notice reaches every host of a pod: they
save the same step and exit with code 4 together (none is stopped early then).
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading

PREEMPTED = 4  # cnngen_jax.cli.EXIT_PREEMPTED (this script imports nothing of the package)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _relay(index: int, stream) -> None:
    for line in stream:
        sys.stdout.write(f"[{index}] {line}")
        sys.stdout.flush()


def launch(num_processes: int, main_args: list[str], devices_per_process: int = 1) -> int:
    """Runs the processes to completion; returns the launch's exit code."""
    address = f"127.0.0.1:{free_port()}"
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices_per_process}"
    ).strip()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cnngen_jax.main",
                *main_args,
                f"--coordinator_address={address}",
                f"--num_processes={num_processes}",
                f"--process_id={i}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(num_processes)
    ]

    def forward_sigterm(signum, frame) -> None:
        for process in processes:
            process.send_signal(signal.SIGTERM)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, forward_sigterm)
    relays = [threading.Thread(target=_relay, args=(i, p.stdout)) for i, p in enumerate(processes)]
    for relay in relays:
        relay.start()
    exit_code = 0
    remaining = list(processes)
    while remaining:
        for process in list(remaining):
            try:
                code = process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            remaining.remove(process)
            if code and not exit_code:
                exit_code = code
                if code != PREEMPTED:  # the others are saving the same step: let them finish
                    for other in remaining:
                        other.terminate()
    for relay in relays:
        relay.join()
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
    return exit_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_processes", type=int, default=2)
    parser.add_argument("--devices_per_process", type=int, default=1)
    parser.add_argument("main_args", nargs=argparse.REMAINDER, help="arguments after --")
    args = parser.parse_args()
    main_args = args.main_args[1:] if args.main_args[:1] == ["--"] else args.main_args
    sys.exit(launch(args.num_processes, main_args, args.devices_per_process))


if __name__ == "__main__":
    main()
