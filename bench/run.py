#!/usr/bin/env python3
"""Benchmark bmcd against the reference emulator sushy-tools (stdlib only; drives `wrk`).

    python3 bench/run.py [--mode full|smoke] [--out DIR] [--bmcd PATH] [--bmcd-library PATH]
                         [--publish] [--no-sushy]

`make bench` runs `--mode full --publish --bmcd target/release/bmcd-lean --bmcd-library
target/release/bmcd`, `make bench-smoke` runs `--mode smoke` on the debug binary.

Everything runs on 127.0.0.1 and is bounded in time and count. The script starts one private
libvirtd (tests/e2e/libvirtd.sh, needs root) that hosts libvirt's test driver, then bmcd
(--bmcd, HTTPS, Basic auth) and sushy-emulator (from a venv in target/bench-venv, installed
from bench/requirements-sushy.txt if missing), both as clients of that daemon
(test+unix:///ABS/node-N.xml?socket=... with generated node files, and
test+unix:///default?socket=...). It measures each phase, records libvirtd's own memory
apart (counted for neither), records the idle RSS of --bmcd-library on the in-process
test:///default as a reference, stops every process it started (libvirtd too), and writes
results.json, report.md and scale.svg into the output folder (default
target/bench/MODE-TIMESTAMP). With --publish it also copies scale.svg and results.json into
bench/results/ and replaces the generated part of docs/performance.md.

The exit status is 0 when every phase ran and produced numbers, 1 when one did not, and 2 on
bad usage. Timings never fail the run: the budgets are reported, not asserted.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
import plot  # noqa: E402  (bench/plot.py)

MODES = {
    # runs: wrk repetitions (median reported); duration: seconds per wrk run at CONNS
    # connections; lat_duration: seconds of the single-connection latency run.
    'full': dict(startup_runs=7, cold_runs=3, runs=3, duration=10, lat_duration=5,
                 threads=2, conns=16, power_n=200, power_max_s=20, power_runs=3,
                 sizes=[10, 100, 1000], scale_duration=10, scale_lat_duration=5,
                 scale_startup_runs=3, pip_timeout=600, quiet_wait=300,
                 redo=2, wait_budget=1200),
    'smoke': dict(startup_runs=2, cold_runs=1, runs=1, duration=2, lat_duration=1,
                  threads=2, conns=16, power_n=10, power_max_s=3, power_runs=1,
                  sizes=[10], scale_duration=1, scale_lat_duration=1,
                  scale_startup_runs=1, pip_timeout=150, quiet_wait=0,
                  redo=0, wait_budget=0),
}
ROOT_PATH = '/redfish/v1'
DEFAULT_URI = 'test:///default'  # libvirt's built-in node: one domain, shared by every connection
DEFAULT_NODE = '/default'  # the same node in the daemon: test+unix:///default?socket=...
DEFAULT_LIBRARY_BMCD = os.path.join(ROOT, 'target', 'release', 'bmcd')
DEFAULT_UUID = '6695eb01-f6a4-8304-79aa-97f2502e193f'  # its domain "test"
COLL_PATH = '/redfish/v1/Systems'
EXPAND_PATH = COLL_PATH + '?$expand=.($levels=1)'  # the collection with every member inline
ADMIN = 'admin'
START_TIMEOUT_S = 60
VENV = os.environ.get('BENCH_VENV') or os.path.join(ROOT, 'target', 'bench-venv')
REQUIREMENTS = os.path.join(HERE, 'requirements-sushy.txt')
QUIET_PCT = 10      # host CPU busy (all CPUs) below which the host counts as quiet
OTHER_MAX_PCT = 10  # a wrk run during which other processes took more is redone (full mode)
LIBVIRTD_SH = os.path.join(ROOT, 'tests', 'e2e', 'libvirtd.sh')
# libvirtd's QEMU capabilities cache, kept between runs: with it the daemon starts in ~0.2 s,
# without it it probes QEMU first (~8 s). Copied into each run's daemon folder.
LIBVIRTD_CACHE = os.path.join(ROOT, 'target', 'bench', 'libvirtd-cache')
LIBVIRTD_TIMEOUT_S = 90  # bounds libvirtd.sh start and stop (it gives up after 30 s + 20 s itself)
# Folders the private libvirtd sees as its own copies (its mount namespace): no node file there.
LIBVIRTD_PRIVATE = ('/run', '/var/lib', '/var/cache', '/var/log', '/etc')
GEN_BEGIN = '<!-- bench:generated:begin (bench/run.py --publish rewrites this part) -->'
GEN_END = '<!-- bench:generated:end -->'


def log(*a):
    print('bench:', *a, flush=True)


def uuid_of(i):
    return '00000000-0000-4000-8000-%012x' % i


def node_xml(n):
    """A libvirt test-driver node with n domains, as tests/src/lib.rs `test_node` makes."""
    out = ["<node>\n  <cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>"
           "<active>2</active><mhz>2000</mhz><model>x86_64</model></cpu>\n"
           "  <memory>16777216</memory>\n"]
    for i in range(1, n + 1):
        name = 'vm-%d' % i
        out.append(
            "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
            "<name>%s</name><uuid>%s</uuid><memory unit='MiB'>512</memory><vcpu>2</vcpu>\n"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
            "<devices>\n"
            "<disk type='file' device='disk'><source file='/var/lib/redfin/%s.qcow2'/>"
            "<target dev='vda' bus='virtio'/></disk>\n"
            "<disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>\n"
            "<interface type='network'><mac address='52:54:00:00:%02x:%02x'/>"
            "<source network='default'/><model type='virtio'/></interface>\n"
            "</devices>\n"
            "<test:runstate>%d</test:runstate>\n"
            "</domain>\n" % (name, uuid_of(i), name, i // 256, i % 256, 1 if i % 2 == 1 else 5))
    out.append('</node>\n')
    return ''.join(out)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def proc_status(pid):
    out = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                k, _, v = line.partition(':')
                if k in ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile', 'Threads'):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def libvirt_mapped(pid):
    """Has the process mapped libvirt.so (None when its maps cannot be read)?"""
    try:
        with open('/proc/%d/maps' % pid) as f:
            return any('/libvirt.so' in line for line in f)
    except OSError:
        return None


def proc_cpu_s(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return None


def host_busy_s():
    """Busy CPU seconds of the whole host so far (all CPUs), from /proc/stat."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def rusage_s(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cmd_line(cmd):
    return ' '.join(shlex.quote(c) for c in cmd)


def sh_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


class PhaseFailed(Exception):
    pass


# --------------------------------------------------------------------------------------------
# services

class Service:
    """One bmcd or sushy-emulator process that this script started (and will stop)."""

    def __init__(self, kind, proto, uri, work, bmcd_bin=None, password=None,
                 cert=None, state_dir=None):
        self.kind, self.proto = kind, proto
        self.uri, self.work = uri, work
        self.bmcd_bin, self.password = bmcd_bin, password
        self.cert, self.state_dir = cert, state_dir
        self.proc = None
        self.port = None
        self.auth = None
        if kind == 'bmcd':
            tok = base64.b64encode(('%s:%s' % (ADMIN, password)).encode()).decode()
            self.auth = 'Basic ' + tok
        self.ctx = ssl._create_unverified_context()  # self-signed certificates, loopback only
        self.starts = 0

    @property
    def label(self):
        return {'bmcd': 'bmcd', 'sushy': 'sushy-tools'}[self.kind] + ' ' + self.proto.upper()

    def command(self, port):
        uri = self.uri
        if self.kind == 'bmcd':
            return [self.bmcd_bin, '--listen', '127.0.0.1:%d' % port, '--libvirt-uri', uri,
                    '--state-dir', self.state_dir]
        cmd = [os.path.join(VENV, 'bin', 'sushy-emulator'), '-i', '127.0.0.1', '-p', str(port),
               '--libvirt-uri', uri]
        if self.proto == 'https':
            cmd += ['--ssl-certificate', self.cert[0], '--ssl-key', self.cert[1]]
        return cmd

    def env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('BMCD_', 'SUSHY_EMULATOR_'))}
        if self.kind == 'bmcd':
            env['BMCD_ADMIN_USER'] = ADMIN
            env['BMCD_ADMIN_PASSWORD'] = self.password
        return env

    def start(self):
        """Start the service; returns seconds from spawn to the first 200 on /redfish/v1."""
        assert self.proc is None
        self.port = free_port()
        self.starts += 1
        logf = open(os.path.join(self.work, '%s-%s-%d.log' % (self.kind, self.proto, self.starts)), 'w')
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(self.port), env=self.env(), stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        while time.perf_counter() - t0 < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise PhaseFailed('%s exited with %s during startup (log in %s)'
                                  % (self.label, self.proc.returncode, self.work))
            try:
                st, _, _ = self.request('GET', ROOT_PATH, timeout=1)
                if st == 200:
                    return time.perf_counter() - t0
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.002)
        raise PhaseFailed('%s gave no 200 on %s within %ss' % (self.label, ROOT_PATH, START_TIMEOUT_S))

    def stop(self):
        """SIGTERM, then SIGKILL after 15 s; returns seconds until the process exited."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return None
        t0 = time.perf_counter()
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        return time.perf_counter() - t0

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def url(self, path):
        return '%s://127.0.0.1:%d%s' % (self.proto, self.port, path)

    def conn(self, timeout=10):
        if self.proto == 'https':
            return http.client.HTTPSConnection('127.0.0.1', self.port, timeout=timeout,
                                               context=self.ctx)
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)

    def headers(self, extra=None):
        h = {'Accept': 'application/json'}
        if self.auth:
            h['Authorization'] = self.auth
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, timeout=10, conn=None):
        c = conn or self.conn(timeout)
        try:
            hdr = self.headers({'Content-Type': 'application/json'} if body is not None else None)
            c.request(method, path, body=None if body is None else json.dumps(body), headers=hdr)
            r = c.getresponse()
            data = r.read()
            return r.status, data, r
        finally:
            if conn is None:
                c.close()

    def get_json(self, path):
        st, data, _ = self.request('GET', path)
        if st != 200:
            raise PhaseFailed('%s: GET %s -> %s' % (self.label, path, st))
        return json.loads(data)

    def tls_version(self):
        if self.proto != 'https':
            return None
        c = self.conn()
        try:
            c.connect()
            return c.sock.version()
        finally:
            c.close()

    def keepalive(self):
        """Does the server keep the connection open after a GET (HTTP/1.1 keep-alive)?"""
        c = self.conn()
        try:
            _, _, r = self.request('GET', ROOT_PATH, conn=c)
            return (r.getheader('Connection') or '').lower() != 'close' and not r.will_close
        finally:
            c.close()


class Libvirtd:
    """The run's one private libvirtd (tests/e2e/libvirtd.sh, in its own mount namespace). It
    hosts libvirt's test driver, and bmcd and sushy-tools are both its clients, as with
    qemu:///system in production."""

    def __init__(self, folder):
        self.dir = folder
        self.sock = os.path.join(folder, 'run', 'libvirt', 'libvirt-sock')
        self.pid = None
        self.started = False
        self.checked = set()

    def script(self, cmd):
        return subprocess.run(['bash', LIBVIRTD_SH, cmd, self.dir], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=LIBVIRTD_TIMEOUT_S)

    def start(self):
        """Start it (bounded: fails, never hangs); returns the seconds libvirtd.sh took. A
        daemon left in the folder by an earlier run is stopped first (start would reuse it)."""
        if os.geteuid() != 0:
            raise PhaseFailed('the private libvirtd (tests/e2e/libvirtd.sh) needs root')
        for tool in ('libvirtd', 'virtlogd', 'virsh', 'unshare', 'taskset', 'flock'):
            if not shutil.which(tool):
                raise PhaseFailed('%s not found; the private libvirtd needs it '
                                  '(scripts/install-deps.sh installs libvirt)' % tool)
        if len(self.sock.encode()) > 107:
            raise PhaseFailed('libvirtd socket path too long for a UNIX socket (%d bytes): %s; '
                              'use a shorter --out' % (len(self.sock.encode()), self.sock))
        if os.path.isdir(self.dir):
            self.stop_stale()
        os.makedirs(self.dir, exist_ok=True)
        if os.path.isdir(LIBVIRTD_CACHE):
            shutil.copytree(LIBVIRTD_CACHE, os.path.join(self.dir, 'varcache'), dirs_exist_ok=True)
        self.started = True  # from here on stop() cleans up, whatever happens
        t0 = time.monotonic()
        try:
            p = self.script('start')
        except subprocess.TimeoutExpired:
            raise PhaseFailed('private libvirtd: tests/e2e/libvirtd.sh start %s gave no answer '
                              'within %d s' % (self.dir, LIBVIRTD_TIMEOUT_S))
        secs = time.monotonic() - t0
        with open(os.path.join(self.dir, 'libvirtd-sh-start.log'), 'w') as f:
            f.write(p.stdout + p.stderr)
        if p.returncode != 0 or 'LIBVIRT_URI=' not in p.stdout:
            raise PhaseFailed('private libvirtd did not start (tests/e2e/libvirtd.sh start %s, exit '
                              '%s); its log: %s/varlog/libvirt/libvirtd.log\n%s'
                              % (self.dir, p.returncode, self.dir, p.stderr.strip()[-2000:]))
        try:
            with open(os.path.join(self.dir, 'run', 'libvirtd.pid')) as f:
                self.pid = int(f.read().strip())
        except (OSError, ValueError) as exc:
            raise PhaseFailed('private libvirtd: no pid file: %s' % exc)
        if not proc_status(self.pid):
            raise PhaseFailed('private libvirtd: pid %d from its pid file is gone' % self.pid)
        # libvirtd.sh pins the daemons to one CPU (for its QEMU capabilities cache, which the
        # test driver does not use); unpinned, the daemon runs as a production one does.
        pin_threads(self.pid, set(range(os.cpu_count() or 1)))
        if not os.path.isdir(LIBVIRTD_CACHE):
            tmp = LIBVIRTD_CACHE + '.tmp-%d' % os.getpid()
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(os.path.join(self.dir, 'varcache'), tmp)
            try:
                os.rename(tmp, LIBVIRTD_CACHE)
            except OSError:  # another run made it meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        return secs

    def stop_stale(self):
        """Stop a daemon that an earlier, killed run left in this folder (no-op if none)."""
        try:
            self.script('stop')
        except (OSError, subprocess.SubprocessError):
            pass

    def stop(self):
        """Stop the daemon (and virtlogd); True when libvirtd.sh says every process is gone."""
        if not self.started:
            return True
        self.started = False
        try:
            p = self.script('stop')
            ok, detail = p.returncode == 0, p.stderr.strip()[-1000:]
        except (OSError, subprocess.SubprocessError) as exc:
            ok, detail = False, str(exc)
        if not ok:
            log('could not stop the private libvirtd in %s (%s); try: bash tests/e2e/libvirtd.sh '
                'stop %s' % (self.dir, detail, self.dir))
        return ok

    def node_uri(self, path):
        """test+unix:// URI of a node file (or DEFAULT_NODE) in the daemon, after checking that
        the daemon can read it."""
        if path != DEFAULT_NODE and path not in self.checked:
            if not os.path.isabs(path):
                raise PhaseFailed('node file path %s is not absolute' % path)
            real = os.path.realpath(path)
            for d in LIBVIRTD_PRIVATE:
                if real == d or real.startswith(d + '/'):
                    raise PhaseFailed('node file %s is under %s, which the private libvirtd sees as '
                                      'its own copy; use an --out outside %s'
                                      % (path, d, ', '.join(LIBVIRTD_PRIVATE)))
            # the file as the daemon sees it, through its mount namespace
            if not os.access('/proc/%d/root%s' % (self.pid, real), os.R_OK):
                raise PhaseFailed('the private libvirtd (pid %d) cannot read node file %s'
                                  % (self.pid, path))
            self.checked.add(path)
        q = urllib.parse.quote
        return 'test+unix://%s?socket=%s' % (q(path, safe='/'), q(self.sock, safe='/'))


# --------------------------------------------------------------------------------------------
# measurements

UNIT_MS = {'us': 1e-3, 'ms': 1.0, 's': 1e3, 'm': 6e4}


def to_ms(s):
    m = re.match(r'([\d.]+)(us|ms|s|m)$', s)
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.halt = pid, 0, threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.peak = max(self.peak, proc_status(self.pid).get('VmRSS', 0))
            self.halt.wait(0.1)

    def finish(self):
        self.halt.set()
        self.join()
        self.peak = max(self.peak, proc_status(self.pid).get('VmRSS', 0))
        return self.peak


def pin_threads(pid, cpus):
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


def run_wrk(svc, path, conns, duration, threads=2, extra_headers=(), wrk_cpu=None, outdir=None,
            tag='', timeout_s=5, daemon_pid=None):
    """One wrk run; returns its numbers and the server's CPU time and peak RSS meanwhile (and
    those of the libvirtd at daemon_pid, which serves the server)."""
    threads = min(threads, conns)
    cmd = ['wrk', '-t%d' % threads, '-c%d' % conns, '-d%ds' % duration, '--latency',
           '--timeout', '%ds' % timeout_s, '-H', 'Accept: application/json']
    shown = list(cmd)
    if svc.auth:
        cmd += ['-H', 'Authorization: ' + svc.auth]
        shown += ['-H', 'Authorization: Basic $(printf admin:$PASSWORD | base64)']
    for h in extra_headers:
        cmd += ['-H', h]
        shown += ['-H', h]
    cmd.append(svc.url(path))
    shown.append(svc.url(path))
    preexec = (lambda: os.sched_setaffinity(0, wrk_cpu)) if wrk_cpu else None
    sampler = RssSampler(svc.pid)
    sampler.start()
    dsampler = RssSampler(daemon_pid) if daemon_pid else None
    if dsampler:
        dsampler.start()
    dcpu0 = proc_cpu_s(daemon_pid) if daemon_pid else None
    cpu0, busy0 = proc_cpu_s(svc.pid), host_busy_s()
    ch0, me0, t0 = rusage_s(resource.RUSAGE_CHILDREN), rusage_s(resource.RUSAGE_SELF), time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=preexec,
                          timeout=duration + timeout_s + 60)
    wall = time.monotonic() - t0
    cpu1, busy1 = proc_cpu_s(svc.pid), host_busy_s()
    dcpu1 = proc_cpu_s(daemon_pid) if daemon_pid else None
    wrk_cpu_s = rusage_s(resource.RUSAGE_CHILDREN) - ch0
    me_s = rusage_s(resource.RUSAGE_SELF) - me0
    peak = sampler.finish()
    dpeak = dsampler.finish() if dsampler else None
    out = proc.stdout
    if outdir:
        with open(os.path.join(outdir, 'wrk-%s.txt' % tag), 'w') as f:
            f.write(cmd_line(shown) + '\n' + out + proc.stderr)
    r = {'cmd': cmd_line(shown), 'threads': threads, 'conns': conns, 'duration_s': duration}
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    r['rps'] = float(m.group(1)) if m else None
    for pct in ('50', '75', '90', '99'):
        m = re.search(r'^\s+%s%%\s+(\S+)' % pct, out, re.M)
        r['p%s_ms' % pct] = to_ms(m.group(1)) if m else None
    m = re.search(r'(\d+) requests in', out)
    r['requests'] = int(m.group(1)) if m else None
    m = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    r['non2xx'] = int(m.group(1)) if m else 0
    m = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    r['socket_errors'] = sum(map(int, m.groups())) if m else 0
    def cpu_delta(before, after):
        return None if before is None or after is None else after - before

    def ms_per_request(seconds):
        return seconds * 1e3 / r['requests'] if seconds is not None and r['requests'] else None

    r['server_cpu_s'] = cpu_delta(cpu0, cpu1)
    r['server_cpu_ms_per_req'] = ms_per_request(r['server_cpu_s'])
    r['wrk_cpu_s'] = wrk_cpu_s
    r['daemon_cpu_s'] = cpu_delta(dcpu0, dcpu1)
    r['daemon_cpu_ms_per_req'] = ms_per_request(r['daemon_cpu_s'])
    r['daemon_peak_rss_kib'] = dpeak
    other = ((busy1 - busy0) - (r['server_cpu_s'] or 0) - (r['daemon_cpu_s'] or 0) - wrk_cpu_s
             - me_s)
    r['other_cpu_pct'] = max(0.0, 100 * other / (wall * (os.cpu_count() or 1)))
    r['peak_rss_kib'] = peak
    if proc.returncode != 0 or not r['rps'] or not r['requests'] or r['p50_ms'] is None:
        raise PhaseFailed('wrk on %s failed (rc %s): %s %s' % (
            svc.url(path), proc.returncode, out[-400:], proc.stderr[-400:]))
    if r['non2xx']:
        raise PhaseFailed('wrk on %s: %d non-2xx/3xx responses' % (svc.url(path), r['non2xx']))
    if r['socket_errors'] > r['requests'] // 100:
        raise PhaseFailed('wrk on %s: %d socket errors in %d requests'
                          % (svc.url(path), r['socket_errors'], r['requests']))
    return r


def wait_server_idle(pid, max_s=120):
    """Wait until the server has used under 5 % of a CPU for half a second: a slow server may
    still be working off the requests of the previous wrk run after wrk has gone."""
    t0 = time.monotonic()
    quiet = 0
    last = proc_cpu_s(pid)
    while time.monotonic() - t0 < max_s and last is not None:
        time.sleep(0.1)
        now = proc_cpu_s(pid)
        if now is None:
            return
        quiet = quiet + 1 if now - last < 0.005 else 0
        last = now
        if quiet >= 5:
            return


def summarize(runs):
    keys = ('rps', 'p50_ms', 'p75_ms', 'p90_ms', 'p99_ms', 'server_cpu_ms_per_req',
            'other_cpu_pct', 'daemon_cpu_ms_per_req')
    s = {k: med([r.get(k) for r in runs]) for k in keys}
    s['peak_rss_kib'] = max(r['peak_rss_kib'] for r in runs)
    s['daemon_peak_rss_kib'] = max([r['daemon_peak_rss_kib'] for r in runs
                                    if r.get('daemon_peak_rss_kib')] or [None])
    s['requests'] = sum(r['requests'] for r in runs)
    s['socket_errors'] = sum(r['socket_errors'] for r in runs)
    s['cmd'] = runs[0]['cmd']
    s['runs'] = runs
    return s


def power_loop(svc, reset_path, n, max_s):
    """Sequential POST ComputerSystem.Reset, ForceOff/On alternating, one kept-alive connection
    (a new one whenever the server closes it)."""
    lat, bad, codes, new_conns = [], 0, {}, 1
    c = svc.conn()
    t0 = time.monotonic()
    for i in range(n):
        if time.monotonic() - t0 > max_s:
            break
        body = {'ResetType': 'ForceOff' if i % 2 == 0 else 'On'}
        s = time.perf_counter()
        try:
            st, _, r = svc.request('POST', reset_path, body=body, conn=c)
            codes[st] = codes.get(st, 0) + 1
            if st not in (200, 202, 204):
                bad += 1
            if r.will_close:
                c.close()
                c, new_conns = svc.conn(), new_conns + 1
        except (OSError, http.client.HTTPException):
            bad += 1
            c.close()
            c, new_conns = svc.conn(), new_conns + 1
        lat.append((time.perf_counter() - s) * 1e3)
    wall = time.monotonic() - t0
    c.close()
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] if lat else None
    return {'ops': len(lat), 'errors': bad, 'status_codes': codes, 'connections': new_conns,
            'seconds': wall, 'ops_per_s': len(lat) / wall if wall else None,
            'p50_ms': pct(50), 'p99_ms': pct(99)}


def power_state_sticks(svc, sys_path, reset_path):
    """After ForceOff, does a later GET show PowerState Off (and On after On)?"""
    seen = []
    for rt in ('ForceOff', 'On'):
        st, _, _ = svc.request('POST', reset_path, body={'ResetType': rt})
        seen.append((rt, st, svc.get_json(sys_path).get('PowerState')))
    return seen[0][2] == 'Off' and seen[1][2] == 'On', seen


# --------------------------------------------------------------------------------------------
# the run

class Bench:
    def __init__(self, args):
        self.args = args
        self.p = dict(MODES[args.mode])
        if args.sizes:
            self.p['sizes'] = [int(x) for x in args.sizes.split(',')]
        if args.out:
            self.out = os.path.abspath(args.out)
        elif args.mode == 'smoke':  # one folder, replaced on each run (make test runs it)
            self.out = os.path.join(ROOT, 'target', 'bench', 'smoke')
            # a daemon left by a killed earlier run lives in this folder: stop it first
            Libvirtd(os.path.join(self.out, 'libvirtd')).stop_stale()
            shutil.rmtree(self.out, ignore_errors=True)
        else:
            self.out = os.path.join(ROOT, 'target', 'bench', 'full-' + time.strftime('%Y%m%d-%H%M%S'))
        self.work = os.path.join(self.out, 'work')
        os.makedirs(self.work, exist_ok=True)
        self.bmcd_bin = os.path.abspath(args.bmcd)
        # The reference build (links libvirt.so, hosts test:///default in-process): required
        # when named, measured when the default path exists, else left out.
        self.bmcd_library = os.path.abspath(args.bmcd_library or DEFAULT_LIBRARY_BMCD)
        self.library_required = bool(args.bmcd_library)
        self.daemon = Libvirtd(os.path.join(self.out, 'libvirtd'))
        self.password = 'bench-' + secrets.token_hex(8)
        self.live = []
        self.phases = []
        self.R = {'mode': args.mode, 'params': self.p, 'phases': self.phases}
        self.sushy = False
        self.wait_left = self.p['wait_budget']

    # -- bookkeeping --------------------------------------------------------------------
    def phase(self, name, fn, *a, required=True):
        log('--', name)
        t0 = time.monotonic()
        try:
            fn(*a)
            self.phases.append({'name': name, 'ok': True, 'seconds': round(time.monotonic() - t0, 1)})
            return True
        except Exception as exc:  # keep going: report every phase, then fail
            detail = str(exc) if isinstance(exc, PhaseFailed) else traceback.format_exc()
            log('%s: %s: %s' % ('PHASE FAILED' if required else 'skipped (optional)', name, detail))
            self.phases.append({'name': name, 'ok': not required, 'error': detail,
                                'seconds': round(time.monotonic() - t0, 1)})
            return False
        finally:
            self.stop_all()

    def service(self, *a, **kw):
        s = Service(*a, **kw)
        self.live.append(s)
        return s

    def stop_all(self):
        while self.live:
            self.live.pop().stop()

    def close(self):
        """Stop every service, then the daemon; True when the daemon stopped cleanly."""
        self.stop_all()
        return self.daemon.stop()

    def node(self, n):
        path = os.path.join(self.work, 'node-%d.xml' % n)
        if not os.path.exists(path):
            with open(path, 'w') as f:
                f.write(node_xml(n))
        return path

    def state_dir(self, name):
        d = os.path.join(self.work, 'state-' + name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    def bmcd(self, n, state):
        return self.service('bmcd', 'https', self.daemon.node_uri(self.node(n)), self.work,
                            bmcd_bin=self.bmcd_bin, password=self.password, state_dir=state)

    def sushy_svc(self, n, proto):
        return self.service('sushy', proto, self.daemon.node_uri(self.node(n)), self.work,
                            cert=self.cert)

    def targets(self, n):
        """Fresh (not started) services for an n-domain node: bmcd first."""
        t = [self.bmcd(n, self.state_dir('bmcd-%d' % n))]
        if self.sushy:
            t.append(self.sushy_svc(n, 'http'))
            t.append(self.sushy_svc(n, 'https'))
        return t

    def wait_quiet(self, max_s):
        """Wait (bounded by max_s and the run's wait budget) until other processes leave the
        host idle; returns the last busy percentage seen."""
        t0 = time.monotonic()
        while True:
            b0 = host_busy_s()
            time.sleep(1)
            busy = 100 * (host_busy_s() - b0) / (os.cpu_count() or 1)
            waited = time.monotonic() - t0
            if busy < QUIET_PCT or waited >= max_s or waited >= self.wait_left:
                self.wait_left = max(0, self.wait_left - waited)
                return busy
            if int(waited) % 30 == 0:
                log('host %.0f%% busy with other work; waiting (%.0f s of the run\'s wait budget left)'
                    % (busy, self.wait_left - waited))

    def wrk(self, svc, path, conns, duration, tag, **kw):
        """run_wrk, in full mode only on a quiet host: a run during which other processes took
        more than OTHER_MAX_PCT of the CPUs is redone (up to `redo` times; the cleanest counts)."""
        kw.setdefault('threads', self.p['threads'])
        best = None
        for attempt in range(1 + self.p['redo']):
            wait_server_idle(svc.pid)
            if self.p['redo']:
                self.wait_quiet(120)
            r = run_wrk(svc, path, conns, duration, outdir=self.work, tag=tag,
                        daemon_pid=self.daemon.pid, **kw)
            r['attempt'] = attempt + 1
            if best is None or r['other_cpu_pct'] < best['other_cpu_pct']:
                best = r
            if r['other_cpu_pct'] <= OTHER_MAX_PCT:
                break
            log('%s: other processes took %.0f%% of the CPUs during this run%s'
                % (tag, r['other_cpu_pct'], '; redoing it' if attempt < self.p['redo'] else ''))
        return best

    # -- phases -------------------------------------------------------------------------
    def ph_machine(self):
        mem = cpu = None
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    mem = int(line.split()[1])
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
        osr = {}
        if os.path.exists('/etc/os-release'):
            for line in open('/etc/os-release'):
                k, _, v = line.strip().partition('=')
                osr[k] = v.strip('"')
        self.R['machine'] = {
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'nproc': os.cpu_count(), 'mem_total_mib': mem // 1024 if mem else None,
            'cpu_model': cpu, 'kernel': platform.release(), 'os': osr.get('PRETTY_NAME'),
            'python': platform.python_version(),
            'wrk': (sh_out(['wrk', '-v']) or '').splitlines()[0:1],
            'libvirt': sh_out(['pkg-config', '--modversion', 'libvirt']),
            'libvirtd': sh_out(['libvirtd', '--version']),
            'bmcd': sh_out([self.bmcd_bin, '--version']), 'bmcd_path': self.bmcd_bin,
            'loadavg_start': open('/proc/loadavg').read().split()[:3],
            'git_commit': sh_out(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD']),
            'git_dirty': bool(sh_out(['git', '-C', ROOT, 'status', '--porcelain', '--', 'bmcd',
                                      'Cargo.toml', 'Cargo.lock'])),
        }
        if not shutil.which('wrk'):
            raise PhaseFailed('wrk not found (apt-get install wrk)')
        if not os.access(self.bmcd_bin, os.X_OK):
            raise PhaseFailed('%s missing: build it first (make release-lean for '
                              'target/release/bmcd-lean, make release for target/release/bmcd, '
                              'make build for target/debug/bmcd)' % self.bmcd_bin)
        if self.p['quiet_wait']:
            busy = self.wait_quiet(self.p['quiet_wait'])
        else:
            b0 = host_busy_s()
            time.sleep(1)
            busy = 100 * (host_busy_s() - b0) / (os.cpu_count() or 1)
        self.R['machine']['busy_pct_before'] = round(busy, 1)
        log('machine: %s' % json.dumps(self.R['machine']))

    def ph_libvirtd(self):
        """Start the run's private libvirtd; its idle RSS (before any client)."""
        secs = self.daemon.start()
        time.sleep(1)
        D = {'dir': self.daemon.dir, 'socket': self.daemon.sock, 'pid': self.daemon.pid,
             'start_s': round(secs, 2), 'rss_idle': proc_status(self.daemon.pid),
             'uri_example': self.daemon.node_uri(self.node(10)),
             'uri_default': self.daemon.node_uri(DEFAULT_NODE)}
        try:
            with open(os.path.join(self.daemon.dir, 'run', 'virtlogd.pid')) as f:
                D['virtlogd_rss_idle'] = proc_status(int(f.read().strip()))
        except (OSError, ValueError):
            pass
        self.R['libvirtd'] = D
        log('libvirtd: up in %.1f s, pid %d, RSS idle %s KiB (RssAnon %s); servers use %s'
            % (secs, self.daemon.pid, D['rss_idle'].get('VmRSS'), D['rss_idle'].get('RssAnon'),
               D['uri_example']))

    def ph_libvirtd_stop(self):
        D = self.R.setdefault('libvirtd', {})
        if self.daemon.pid:
            D['rss_end'] = proc_status(self.daemon.pid)  # VmHWM: the daemon's peak over the run
        if not self.daemon.stop():
            raise PhaseFailed('the private libvirtd in %s did not stop' % self.daemon.dir)
        if self.daemon.pid and proc_status(self.daemon.pid).get('VmRSS'):
            raise PhaseFailed('libvirtd pid %d still runs after libvirtd.sh stop' % self.daemon.pid)

    def ph_reference(self):
        """The library build (links libvirt.so) on the in-process test:///default: its idle RSS,
        for comparison with bmcd as a client of the daemon."""
        if not os.access(self.bmcd_library, os.X_OK):
            raise PhaseFailed('%s missing (make release builds target/release/bmcd)' % self.bmcd_library)
        b = self.service('bmcd', 'https', DEFAULT_URI, self.work, bmcd_bin=self.bmcd_library,
                         password=self.password, state_dir=self.state_dir('reference'))
        up = b.start()
        time.sleep(1)
        ref = {'bmcd_path': self.bmcd_library, 'uri': DEFAULT_URI, 'startup_ms': up * 1e3,
               'rss_idle': proc_status(b.pid), 'libvirt_so_mapped': libvirt_mapped(b.pid),
               'bytes': os.path.getsize(self.bmcd_library),
               'version': sh_out([self.bmcd_library, '--version'])}
        if b.get_json(COLL_PATH).get('Members@odata.count') != 1:
            raise PhaseFailed('%s on %s does not list the one domain' % (self.bmcd_library, DEFAULT_URI))
        b.stop()
        self.R['reference'] = ref
        log('reference: %s on in-process %s: RSS idle %s KiB (RssAnon %s, RssFile %s), libvirt.so '
            'mapped: %s' % (os.path.relpath(self.bmcd_library, ROOT), DEFAULT_URI,
                            ref['rss_idle'].get('VmRSS'), ref['rss_idle'].get('RssAnon'),
                            ref['rss_idle'].get('RssFile'), ref['libvirt_so_mapped']))

    def ph_sushy_install(self):
        py = os.path.join(VENV, 'bin', 'python')
        probe = [py, '-c', 'import libvirt, sushy_tools, importlib.metadata as m; '
                 'print(m.version("sushy-tools"), m.version("libvirt-python"))']
        ok = os.path.exists(py) and subprocess.run(probe, capture_output=True).returncode == 0
        if not ok:
            log('installing sushy-tools into %s (pip, up to %ds)' % (VENV, self.p['pip_timeout']))
            t0 = time.monotonic()
            try:
                subprocess.run([sys.executable, '-m', 'venv', VENV], check=True,
                               timeout=self.p['pip_timeout'])
                left = self.p['pip_timeout'] - (time.monotonic() - t0)
                subprocess.run([os.path.join(VENV, 'bin', 'pip'), 'install', '-q',
                                '--disable-pip-version-check', '-r', REQUIREMENTS],
                               check=True, timeout=max(10, left))
            except (OSError, subprocess.SubprocessError) as exc:
                raise PhaseFailed('cannot install sushy-tools: %s' % exc)
        vers = subprocess.run(probe, capture_output=True, text=True)
        if vers.returncode != 0:
            raise PhaseFailed('sushy-tools venv does not import: %s' % vers.stderr[-400:])
        st, lv = vers.stdout.split()
        self.R['machine']['sushy_tools'] = st
        self.R['machine']['libvirt_python'] = lv
        # Same key type as bmcd's generated certificate (ECDSA P-256), for sushy-tools HTTPS.
        key, crt = os.path.join(self.work, 'sushy.key'), os.path.join(self.work, 'sushy.crt')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-days', '2', '-subj', '/CN=127.0.0.1'], check=True,
                       capture_output=True, timeout=30)
        self.cert = (crt, key)
        self.sushy = True

    def ph_sizes(self):
        sz = {'bmcd_bytes': os.path.getsize(self.bmcd_bin)}
        if self.sushy:
            total = 0
            for d, _, files in os.walk(VENV):
                for fn in files:
                    p = os.path.join(d, fn)
                    if not os.path.islink(p):
                        total += os.path.getsize(p)
            sz['sushy_venv_bytes'] = total
        self.R['sizes'] = sz

    def ph_startup(self):
        """Median time from spawn to the first 200 on /redfish/v1, 10 domains."""
        if self.p['redo']:
            self.wait_quiet(120)
        res = {}
        # bmcd, cold: empty state dir (creates the database, the admin hash, the certificate)
        cold = []
        for i in range(self.p['cold_runs']):
            b = self.bmcd(10, self.state_dir('startup-cold'))
            cold.append(b.start() * 1e3)
            b.stop()
            self.live.remove(b)
        # bmcd, warm: the state dir of the last cold start is reused
        warm, stops = [], []
        b = self.bmcd(10, os.path.join(self.work, 'state-startup-cold'))
        for i in range(self.p['startup_runs']):
            warm.append(b.start() * 1e3)
            stops.append(b.stop())
        res['bmcd'] = {'cold_ms': cold, 'warm_ms': warm, 'cold_median_ms': med(cold),
                       'warm_median_ms': med(warm), 'stop_median_s': med(stops)}
        if self.sushy:
            for proto in ('http', 'https'):
                s = self.sushy_svc(10, proto)
                runs, stops = [], []
                for i in range(self.p['startup_runs']):
                    runs.append(s.start() * 1e3)
                    stops.append(s.stop())
                res['sushy-' + proto] = {'warm_ms': runs, 'warm_median_ms': med(runs),
                                         'stop_median_s': med(stops)}
        for k, v in res.items():
            log('startup %s: median %.1f ms %s' % (k, v['warm_median_ms'], [round(x, 1) for x in v['warm_ms']]))
        self.R['startup'] = res

    def ph_compare(self):
        """Side by side on a 10-domain node: GETs under load, single-connection latency,
        power loop, RSS."""
        res = {}
        sys_path = '/redfish/v1/Systems/' + uuid_of(1)  # vm-1, running
        paths = {'root': ROOT_PATH, 'system': sys_path, 'systems': COLL_PATH, 'expand': EXPAND_PATH}
        for svc in self.targets(10):
            key = svc.kind if svc.kind == 'bmcd' else 'sushy-' + svc.proto
            svc.start()
            time.sleep(1)
            r = {'label': svc.label, 'protocol': svc.proto.upper(),
                 'auth': 'Basic' if svc.auth else 'none', 'keepalive': svc.keepalive(),
                 'tls': svc.tls_version(),
                 'rss_idle': proc_status(svc.pid), 'libvirt_so_mapped': libvirt_mapped(svc.pid)}
            sysj = svc.get_json(sys_path)
            svc.get_json(COLL_PATH)
            # Does the service expand? (sushy-tools ignores $expand and sends the plain collection.)
            members = svc.get_json(EXPAND_PATH).get('Members') or [{}]
            r['expands'] = len(members) == 10 and all('PowerState' in m for m in members)
            reset_path = sysj['Actions']['#ComputerSystem.Reset']['target']
            r['get'] = {}
            for pk, path in paths.items():
                runs = [self.wrk(svc, path, self.p['conns'], self.p['duration'],
                                 '%s-%s-c%d-%d' % (key, pk, self.p['conns'], i))
                        for i in range(self.p['runs'])]
                one = self.wrk(svc, path, 1, self.p['lat_duration'], '%s-%s-c1' % (key, pk))
                r['get'][pk] = {'path': path, 'load': summarize(runs), 'c1': summarize([one])}
                log('%-18s GET %-52s %9.1f req/s p50 %7.2f ms p99 %7.2f ms | c1 p50 %.2f ms'
                    % (svc.label, path, r['get'][pk]['load']['rps'], r['get'][pk]['load']['p50_ms'],
                       r['get'][pk]['load']['p99_ms'], one['p50_ms']))
            loops = [power_loop(svc, reset_path, self.p['power_n'], self.p['power_max_s'])
                     for _ in range(self.p['power_runs'])]
            if any(lp['errors'] or not lp['ops'] for lp in loops):
                raise PhaseFailed('%s power loop errors: %s' % (svc.label, loops))
            sticks, seen = power_state_sticks(svc, sys_path, reset_path)
            r['power'] = {'path': reset_path, 'runs': loops, 'state_sticks': sticks, 'seen': seen,
                          'ops_per_s': med([lp['ops_per_s'] for lp in loops]),
                          'p50_ms': med([lp['p50_ms'] for lp in loops]),
                          'p99_ms': med([lp['p99_ms'] for lp in loops])}
            log('%-18s POST Reset loop %.1f ops/s p50 %.2f ms (state sticks: %s)'
                % (svc.label, r['power']['ops_per_s'], r['power']['p50_ms'], sticks))
            r['rss_load'] = proc_status(svc.pid)
            r['rss_load']['peak_sampled'] = max(g['load']['peak_rss_kib'] for g in r['get'].values())
            log('%-18s RSS idle %s KiB, after load %s KiB (HWM %s)'
                % (svc.label, r['rss_idle'].get('VmRSS'), r['rss_load'].get('VmRSS'),
                   r['rss_load'].get('VmHWM')))
            res[key] = r
            svc.stop()
        self.R['compare'] = res

    def ph_fair(self):
        """Equal-work variants of the system GET: (a) a new TLS connection per request on both
        sides (sushy-tools closes every connection anyway), (b) server pinned to CPU 1 and wrk
        to CPU 0, so each server gets one core and does not share it with the load generator."""
        res = {'close': {}, 'pinned': {}}
        sys_path = '/redfish/v1/Systems/' + uuid_of(1)
        ncpu = os.cpu_count() or 1
        for svc in self.targets(10):
            key = svc.kind if svc.kind == 'bmcd' else 'sushy-' + svc.proto
            svc.start()
            time.sleep(0.5)
            if svc.proto == 'https':
                runs = [self.wrk(svc, sys_path, self.p['conns'], self.p['duration'],
                                 '%s-system-close-%d' % (key, i), extra_headers=('Connection: close',))
                        for i in range(self.p['runs'])]
                res['close'][key] = summarize(runs)
                log('%-18s GET system, Connection: close: %.1f req/s' % (svc.label, res['close'][key]['rps']))
            if ncpu >= 2 and (key in ('bmcd', 'sushy-http')):
                pin_threads(svc.pid, {1})
                try:
                    runs = [self.wrk(svc, sys_path, self.p['conns'], self.p['duration'],
                                     '%s-system-pinned-%d' % (key, i), threads=1, wrk_cpu={0})
                            for i in range(self.p['runs'])]
                finally:
                    pin_threads(svc.pid, set(range(ncpu)))
                res['pinned'][key] = summarize(runs)
                log('%-18s GET system, server on CPU 1, wrk on CPU 0: %.1f req/s'
                    % (svc.label, res['pinned'][key]['rps']))
            svc.stop()
        # (c) both on test:///default (in the daemon: test+unix:///default?socket=...). Its node
        # lives in libvirtd's memory, shared by every connection, so opening one parses nothing,
        # unlike a node file, which the test driver parses again on each open (sushy-tools
        # opens a connection per libvirt call).
        res['default'] = {}
        sys_d = '/redfish/v1/Systems/' + DEFAULT_UUID
        duri = self.daemon.node_uri(DEFAULT_NODE)
        svcs = [self.service('bmcd', 'https', duri, self.work, bmcd_bin=self.bmcd_bin,
                             password=self.password, state_dir=self.state_dir('bmcd-default'))]
        if self.sushy:
            svcs += [self.service('sushy', proto, duri, self.work, cert=self.cert)
                     for proto in ('http', 'https')]
        for svc in svcs:
            key = svc.kind if svc.kind == 'bmcd' else 'sushy-' + svc.proto
            svc.start()
            time.sleep(0.5)
            svc.get_json(sys_d)
            res['default'][key] = summarize([
                self.wrk(svc, sys_d, self.p['conns'], self.p['duration'], 'default-%s-%d' % (key, i))
                for i in range(self.p['runs'])])
            log('%-18s test:///default GET system: %.1f req/s' % (svc.label, res['default'][key]['rps']))
            if svc.kind == 'bmcd':
                res['default']['bmcd-close'] = summarize([
                    self.wrk(svc, sys_d, self.p['conns'], self.p['duration'], 'default-bmcd-close-%d' % i,
                             extra_headers=('Connection: close',))
                    for i in range(self.p['runs'])])
                log('%-18s test:///default GET system, Connection: close: %.1f req/s'
                    % (svc.label, res['default']['bmcd-close']['rps']))
            svc.stop()
        self.R['fair'] = res

    def ph_scale(self):
        res = {}
        for n in self.p['sizes']:
            last = '/redfish/v1/Systems/' + uuid_of(n)  # the last domain of the node file
            row = {}
            svcs = self.targets(n)
            svcs = [s for s in svcs if not (s.kind == 'sushy' and s.proto == 'https')]
            for svc in svcs:
                key = svc.kind if svc.kind == 'bmcd' else 'sushy-' + svc.proto
                r = {}
                if svc.kind == 'bmcd':
                    svc.start()  # first (cold) start creates the state dir
                    svc.stop()
                ups = []
                for i in range(self.p['scale_startup_runs']):
                    ups.append(svc.start() * 1e3)
                    if i < self.p['scale_startup_runs'] - 1:
                        svc.stop()
                r['startup_ms'] = med(ups)
                time.sleep(1)
                r['rss_idle'] = proc_status(svc.pid)
                coll = svc.get_json(COLL_PATH)
                if coll.get('Members@odata.count') != n:
                    raise PhaseFailed('%s lists %s systems, expected %d'
                                      % (svc.label, coll.get('Members@odata.count'), n))
                svc.get_json(last)
                for pk, path in (('systems', COLL_PATH), ('system', last)):
                    # A slow service gets longer runs (bounded), so that each run completes
                    # enough requests: about 3 per connection, and 10 on one connection.
                    t0 = time.perf_counter()
                    svc.get_json(path)
                    one_s = time.perf_counter() - t0
                    d1 = int(min(30, max(self.p['scale_lat_duration'], 10 * one_s)))
                    dn = int(min(60, max(self.p['scale_duration'], 3 * self.p['conns'] * one_s)))
                    tmo = int(min(60, max(5, 2 * self.p['conns'] * one_s)))
                    load = self.wrk(svc, path, self.p['conns'], dn, 'scale%d-%s-%s' % (n, key, pk),
                                    timeout_s=tmo)
                    one = self.wrk(svc, path, 1, d1, 'scale%d-%s-%s-c1' % (n, key, pk), timeout_s=tmo)
                    r[pk] = {'path': path, 'load': summarize([load]), 'c1': summarize([one]),
                             'single_get_s': one_s}
                    log('%4d domains %-18s GET %-52s %9.1f req/s p50 %7.2f ms | c1 p50 %.2f ms'
                        % (n, svc.label, path, load['rps'], load['p50_ms'], one['p50_ms']))
                r['rss_load'] = proc_status(svc.pid)
                r['rss_load']['peak_sampled'] = max(r['systems']['load']['peak_rss_kib'],
                                                    r['system']['load']['peak_rss_kib'])
                log('%4d domains %-18s RSS idle %s KiB, load peak %s KiB'
                    % (n, svc.label, r['rss_idle'].get('VmRSS'), r['rss_load']['peak_sampled']))
                row[key] = r
                svc.stop()
            res[str(n)] = row
        self.R['scale'] = res

    # -- report -------------------------------------------------------------------------
    def run(self):
        t0 = time.monotonic()
        ok = self.phase('machine', self.ph_machine)
        ok = ok and self.phase('libvirtd', self.ph_libvirtd)
        if ok and not self.args.no_sushy:
            # In smoke mode sushy-tools is optional (it needs PyPI); in full mode it is required.
            self.phase('sushy-tools install', self.ph_sushy_install, required=self.args.mode == 'full')
        if ok:
            self.phase('sizes', self.ph_sizes)
            if self.library_required or os.path.exists(self.bmcd_library):
                self.phase('reference', self.ph_reference)
            self.phase('startup', self.ph_startup)
            self.phase('compare', self.ph_compare)
            self.phase('fair', self.ph_fair)
            self.phase('scale', self.ph_scale)
        if self.daemon.started:
            self.phase('libvirtd stop', self.ph_libvirtd_stop)
        self.R.setdefault('machine', {})['loadavg_end'] = open('/proc/loadavg').read().split()[:3]
        self.R['seconds'] = round(time.monotonic() - t0, 1)
        self.R['waited_for_quiet_s'] = round(self.p['wait_budget'] - self.wait_left, 1)
        self.R['sushy'] = self.sushy
        if self.library_required or os.path.exists(self.bmcd_library):
            self.R['bmcd_library'] = self.bmcd_library
        self.R['command'] = 'python3 bench/run.py ' + ' '.join(sys.argv[1:])
        try:
            report = Report(self.R).markdown() if ok else ''
        except Exception:  # a failed phase left the results incomplete
            report = ''
            self.phases.append({'name': 'report', 'ok': False, 'error': traceback.format_exc()})
            log('PHASE FAILED: report: %s' % traceback.format_exc())
        with open(os.path.join(self.out, 'results.json'), 'w') as f:
            json.dump(self.R, f, indent=1)
        with open(os.path.join(self.out, 'report.md'), 'w') as f:
            f.write(report)
        if 'scale' in self.R:
            with open(os.path.join(self.out, 'scale.svg'), 'w') as f:
                f.write(plot.scale_svg(self.R))
        print(report)
        failed = [p for p in self.phases if not p['ok']]
        skipped = [p['name'] for p in self.phases if p['ok'] and p.get('error')]
        log('phases: %s' % ', '.join('%s %s' % (p['name'], 'ok' if p['ok'] and not p.get('error')
                                                  else 'skipped' if p['ok'] else 'FAILED')
                                       for p in self.phases))
        if skipped:
            log('skipped (optional): %s' % ', '.join(skipped))
        log('results in %s (%.0f s)' % (self.out, self.R['seconds']))
        if failed:
            log('FAILED phases: %s' % ', '.join(p['name'] for p in failed))
            return 1
        problems = Report(self.R).missing()
        if problems:
            log('FAILED: phases ran but produced no numbers for: %s' % ', '.join(problems))
            return 1
        if self.args.publish:
            publish(self.out, report)
        return 0

def publish(out, report):
    dest = os.path.join(HERE, 'results')
    os.makedirs(dest, exist_ok=True)
    if os.path.abspath(out) != os.path.abspath(dest):
        for name in ('scale.svg', 'results.json'):
            shutil.copy(os.path.join(out, name), os.path.join(dest, name))
    doc = os.path.join(ROOT, 'docs', 'performance.md')
    text = open(doc).read() if os.path.exists(doc) else '# Performance\n\n%s\n%s\n' % (GEN_BEGIN, GEN_END)
    if GEN_BEGIN not in text or GEN_END not in text:
        log('docs/performance.md has no generated-part markers; not rewritten')
        return
    head, rest = text.split(GEN_BEGIN, 1)
    _, tail = rest.split(GEN_END, 1)
    with open(doc, 'w') as f:
        f.write(head + GEN_BEGIN + '\n\n' + report.strip() + '\n\n' + GEN_END + tail)
    log('published: docs/performance.md, bench/results/scale.svg, bench/results/results.json')


# --------------------------------------------------------------------------------------------
# report

def f1(x, nd=1):
    return '–' if x is None else '%.*f' % (nd, x)


def fint(x):
    return '–' if x is None else '{:,}'.format(int(round(x)))


def fnum(x):
    return fint(x) if x is not None and x >= 100 else f1(x)


def mib(kib):
    return None if kib is None else kib / 1024


def ratio(a, b, nd=1):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return '–'
    return '%.*f×' % (nd, a / b)


class Report:
    def __init__(self, R):
        self.R = R
        self.c = R.get('compare', {})
        self.keys = [k for k in ('bmcd', 'sushy-http', 'sushy-https') if k in self.c]

    def missing(self):
        """Names of numbers a successful run must have produced."""
        R, miss = self.R, []
        need = ['bmcd'] + (['sushy-http', 'sushy-https'] if R.get('sushy') else [])
        for k in need:
            if k not in R.get('startup', {}) or not R['startup'][k].get('warm_median_ms'):
                miss.append('startup ' + k)
            c = self.c.get(k)
            if not c:
                miss.append('compare ' + k)
                continue
            for pk in ('root', 'system', 'systems', 'expand'):
                if not (c['get'].get(pk) or {}).get('load', {}).get('rps'):
                    miss.append('%s GET %s' % (k, pk))
            if not c.get('power', {}).get('ops_per_s'):
                miss.append('%s power loop' % k)
            if not c.get('rss_idle', {}).get('VmRSS') or not c.get('rss_load', {}).get('VmHWM'):
                miss.append('%s RSS' % k)
        for n in R['params']['sizes']:
            row = R.get('scale', {}).get(str(n), {})
            for k in ('bmcd',) + (('sushy-http',) if R.get('sushy') else ()):
                if not row.get(k, {}).get('system', {}).get('load', {}).get('rps') or \
                        not row.get(k, {}).get('systems', {}).get('load', {}).get('rps'):
                    miss.append('scale %d %s' % (n, k))
        if not R.get('sizes', {}).get('bmcd_bytes'):
            miss.append('binary size')
        if not R.get('libvirtd', {}).get('rss_idle', {}).get('VmRSS'):
            miss.append('libvirtd idle RSS')
        if not self.daemon_peak(self.c.get('bmcd')):
            miss.append('libvirtd RSS under load')
        if R.get('bmcd_library') and not R.get('reference', {}).get('rss_idle', {}).get('VmRSS'):
            miss.append('reference: library build idle RSS')
        if 'bmcd' not in R.get('fair', {}).get('close', {}):
            miss.append('fair close bmcd')
        for k in ('bmcd', 'bmcd-close') + (('sushy-http', 'sushy-https') if R.get('sushy') else ()):
            if not R.get('fair', {}).get('default', {}).get(k, {}).get('rps'):
                miss.append('fair test:///default ' + k)
        return miss

    def col(self, k):
        return {'bmcd': 'bmcd HTTPS (TLS, Basic auth)', 'sushy-http': 'sushy-tools HTTP (no auth)',
                'sushy-https': 'sushy-tools HTTPS (TLS 1.2, no auth)'}[k]

    def markdown(self):
        R, L = self.R, []
        m = R.get('machine', {})
        p = R['params']
        L.append('### Run\n')
        waited = R.get('waited_for_quiet_s')
        L.append('- Date: %s. Mode: `%s` (%s s%s). Command: `%s`.' % (
            m.get('date'), R['mode'], f1(R.get('seconds'), 0),
            ', of which %s s waiting for other work on the host to finish' % f1(waited, 0) if waited else '',
            R.get('command')))
        L.append('- Source: commit %s%s.' % (m.get('git_commit'), ' with uncommitted changes to bmcd/'
                                                 if m.get('git_dirty') else ''))
        L.append('- Machine: %s, %s CPUs (`nproc`), %s MiB memory, %s, kernel %s.' % (
            m.get('cpu_model'), m.get('nproc'), fint(m.get('mem_total_mib')), m.get('os'),
            m.get('kernel')))
        if R['mode'] == 'smoke':
            L.append('- **Smoke run**: a few seconds per phase. Its numbers only show that every phase '
                     'ran; they are not measurements.')
        mapped = self.c.get('bmcd', {}).get('libvirt_so_mapped')
        L.append('- Software: %s (`%s`%s), libvirt %s, %s, Python %s, %s.' % (
            m.get('bmcd'), os.path.relpath(m.get('bmcd_path', '?'), ROOT),
            '' if mapped is None else ', libvirt.so %s' % ('mapped' if mapped else 'not mapped'),
            m.get('libvirt'), (m.get('wrk') or ['wrk ?'])[0].split(' [')[0],
            m.get('python'), 'sushy-tools %s with libvirt-python %s' % (m['sushy_tools'], m['libvirt_python'])
            if 'sushy_tools' in m else 'sushy-tools not installed (skipped)'))
        D = R.get('libvirtd')
        if D:
            L.append('- libvirt daemon: one private libvirtd (`%s`), started for the whole run with '
                     '`tests/e2e/libvirtd.sh start DIR` (%s s) and stopped at its end. It hosts the test '
                     'driver, and bmcd and sushy-tools are both its clients, as they are clients of '
                     '`qemu:///system` in production: `test+unix:///…/node-N.xml?socket=DIR/run/libvirt/'
                     'libvirt-sock` and `test+unix:///default?socket=…`. Its memory and CPU are counted '
                     'for neither server ([below](#libvirtd-and-the-in-process-reference)).'
                     % (m.get('libvirtd') or 'libvirtd', f1(D.get('start_s'))))
        o_med, o_max, o_bad, o_n = self.other_cpu()
        L.append('- Host CPU busy with other work before the run: %s %%; load average %s at start, '
                 '%s at end. CPU share taken by other processes during the %d wrk runs: median %s %%, '
                 'max %s %%; %d run(s) above %d %%%s.'
                 % (f1(m.get('busy_pct_before'), 0), ' '.join(m.get('loadavg_start', [])),
                    ' '.join(m.get('loadavg_end', [])), o_n, f1(o_med, 1), f1(o_max, 1), o_bad,
                    OTHER_MAX_PCT, '' if R['params']['redo'] else ' (smoke runs do not wait for a quiet host)'))
        L.append('- Load: `wrk -t%d -c%d -d%ds --latency`, median of %d runs; single-connection '
                 'latency: `wrk -t1 -c1 -d%ds`, one run. Power loop: sequential POSTs, '
                 'ForceOff/On alternating, at most %d per run and %d s, median of %d runs.'
                 % (p['threads'], p['conns'], p['duration'], p['runs'], p['lat_duration'],
                    p['power_n'], p['power_max_s'], p['power_runs']))
        L.append('')
        if self.c:
            L += self.compare_table()
        L += self.memory_table()
        if R.get('fair'):
            L += self.fair_table()
        if R.get('scale'):
            L += self.scale_table()
        L += self.budget_table()
        L += self.commands()
        return '\n'.join(L) + '\n'

    def all_runs(self):
        def walk(x):
            if isinstance(x, dict):
                if 'other_cpu_pct' in x and 'cmd' in x and 'rps' in x and 'runs' not in x:
                    yield x
                for v in x.values():
                    yield from walk(v)
            elif isinstance(x, list):
                for v in x:
                    yield from walk(v)
        return list(walk({k: self.R.get(k) for k in ('compare', 'fair', 'scale')}))

    def other_cpu(self):
        xs = [r['other_cpu_pct'] for r in self.all_runs()]
        return med(xs), max(xs) if xs else None, sum(1 for x in xs if x > OTHER_MAX_PCT), len(xs)

    def compare_table(self):
        L = ['### Side by side: 10 domains\n']
        ks = self.keys
        hdr = '| Measure | ' + ' | '.join(self.col(k) for k in ks)
        sus = [k for k in ks if k != 'bmcd']
        hdr += ''.join(' | bmcd ÷ %s' % ('sushy HTTP' if k == 'sushy-http' else 'sushy HTTPS') for k in sus)
        L.append(hdr + ' |')
        L.append('|---' * (1 + len(ks) + len(sus)) + '|')

        def row(name, fn, fmt, kind='rate'):
            """kind: rate (bmcd ÷ sushy), time (sushy ÷ bmcd), pair (p50 of a (p50, p99) pair,
            sushy ÷ bmcd), None (no ratio)."""
            vals = [fn(self.c[k]) for k in ks]
            cells = [fmt(v) for v in vals]
            for k in sus:
                a, b = vals[0], fn(self.c[k])
                if kind == 'rate':
                    cells.append(ratio(a, b))
                elif kind == 'time':
                    cells.append(ratio(b, a))
                elif kind == 'pair':
                    cells.append('%s (p50)' % ratio(b[0], a[0]))
                else:
                    cells.append('–')
            L.append('| %s | %s |' % (name, ' | '.join(cells)))

        def pair(v):
            return '%s / %s' % (f1(v[0], 2), f1(v[1], 2))

        names = {'root': 'GET /redfish/v1', 'system': 'GET one system',
                 'systems': 'GET /redfish/v1/Systems'}
        for pk in ('root', 'system', 'systems'):
            n = names[pk]
            row('%s: requests/s (%d conns)' % (n, self.R['params']['conns']),
                lambda c, pk=pk: c['get'][pk]['load']['rps'], fint)
            row('%s: p50 / p99 latency under load, ms ¹' % n,
                lambda c, pk=pk: (c['get'][pk]['load']['p50_ms'], c['get'][pk]['load']['p99_ms']),
                pair, 'pair')
            row('%s: p50 latency, 1 connection, ms ¹' % n,
                lambda c, pk=pk: c['get'][pk]['c1']['p50_ms'], lambda v: f1(v, 2), 'time')
            row('%s: server CPU per request, ms ¹' % n,
                lambda c, pk=pk: c['get'][pk]['load']['server_cpu_ms_per_req'], lambda v: f1(v, 3),
                'time')
        if all('expand' in self.c[k]['get'] for k in ks):
            # $expand: the same URL for both, but only a service that expands does the work;
            # for one that does not, the cell shows what it sent and the work a client then
            # does itself (the collection, then each of the 10 members), from its measured rates.
            def expand_cell(c):
                g = c['get']
                if c.get('expands'):
                    return fint(g['expand']['load']['rps'])
                return ('%s (plain collection: $expand ignored) ⁴' % fint(g['expand']['load']['rps']))

            def expand_equiv(c):
                g = c['get']
                if c.get('expands'):
                    return g['expand']['load']['rps']
                return 1 / (1 / g['systems']['load']['rps'] + 10 / g['system']['load']['rps'])

            n = 'GET /redfish/v1/Systems?$expand=.($levels=1)'
            vals = [self.c[k] for k in ks]
            cells = [expand_cell(c) for c in vals]
            cells += [ratio(expand_equiv(vals[0]), expand_equiv(self.c[k])) + ' ⁴' for k in sus]
            L.append('| %s: requests/s (%d conns) | %s |' % (n, self.R['params']['conns'], ' | '.join(cells)))
            row('%s: p50 latency, 1 connection, ms ¹' % n,
                lambda c: c['get']['expand']['c1']['p50_ms'], lambda v: f1(v, 2), None)
        row('POST Reset loop (sequential): ops/s', lambda c: c['power']['ops_per_s'], lambda v: f1(v, 1))
        row('POST Reset loop: p50 / p99 ms ¹', lambda c: (c['power']['p50_ms'], c['power']['p99_ms']),
            pair, 'pair')
        row('Power state visible in a later GET', lambda c: c['power']['state_sticks'],
            lambda v: 'yes' if v else '**no** ²', None)
        st = self.R.get('startup', {})
        row('Start to first 200 on /redfish/v1, median, ms ¹',
            lambda c: st.get(self._key(c), {}).get('warm_median_ms'), lambda v: f1(v, 1), 'time')
        row('RSS idle (VmRSS after start), MiB ¹', lambda c: mib(c['rss_idle'].get('VmRSS')),
            lambda v: f1(v, 1), 'time')
        row('RSS under load (peak sampled VmRSS), MiB ¹', lambda c: mib(c['rss_load'].get('peak_sampled')),
            lambda v: f1(v, 1), 'time')
        row('VmHWM after all load, MiB ¹', lambda c: mib(c['rss_load'].get('VmHWM')),
            lambda v: f1(v, 1), 'time')
        row('RssAnon (private memory) idle / after load, MiB ¹',
            lambda c: (mib(c['rss_idle'].get('RssAnon')), mib(c['rss_load'].get('RssAnon'))),
            lambda v: '%s / %s' % (f1(v[0]), f1(v[1])), 'pair')
        L[-1] = L[-1].replace('(p50)', '(idle)')
        row('Threads after load', lambda c: c['rss_load'].get('Threads'), lambda v: fint(v), None)
        row('Protocol', lambda c: c.get('tls') or 'plain HTTP', str, None)
        row('Keeps connections alive', lambda c: c['keepalive'],
            lambda v: 'yes' if v else 'no (Connection: close)', None)
        sz = self.R.get('sizes', {})
        if 'bmcd' in ks:
            cells = ['%.2f MiB binary' % (sz['bmcd_bytes'] / 2**20)]
            for k in ks[1:]:
                cells.append('%.1f MiB venv ³' % (sz['sushy_venv_bytes'] / 2**20) if 'sushy_venv_bytes' in sz else 'n/a')
            for k in sus:
                cells.append(ratio(sz.get('sushy_venv_bytes'), sz['bmcd_bytes']) if 'sushy_venv_bytes' in sz else '–')
            L.append('| Install size | %s |' % ' | '.join(cells))
        L.append('')
        L.append('Ratios are "times better for bmcd": bmcd ÷ sushy-tools for rates, sushy-tools ÷ bmcd '
                 'for times and sizes (¹). ² sushy-tools opens a new libvirt connection per request, and '
                 'the test driver reloads the node file on every connection, so its power changes do '
                 'not last (see [Fairness](#fairness)). ³ The venv without the Python interpreter it links to. '
                 '⁴ A service that ignores `$expand` sends the plain collection; its ratio compares '
                 'bmcd\'s expanded collection with the same data fetched from that service the way a '
                 'client must: one collection GET and one GET per member (10), at its measured '
                 'rates (1 ÷ (1/collection rate + 10/system rate)).')
        L.append('')
        return L

    @staticmethod
    def daemon_peak(tree):
        """The highest libvirtd VmRSS sampled during the wrk runs under tree (KiB), or None."""
        xs = [r.get('daemon_peak_rss_kib') for r in Report.runs_in(tree)]
        xs = [x for x in xs if x]
        return max(xs) if xs else None

    @staticmethod
    def runs_in(x):
        if isinstance(x, dict):
            if 'other_cpu_pct' in x and 'cmd' in x and 'rps' in x and 'runs' not in x:
                yield x
            for v in x.values():
                yield from Report.runs_in(v)
        elif isinstance(x, list):
            for v in x:
                yield from Report.runs_in(v)

    def memory_table(self):
        R = self.R
        D, ref, b = R.get('libvirtd'), R.get('reference'), self.c.get('bmcd')
        if not D and not ref:
            return []
        L = ['### libvirtd and the in-process reference\n',
             'Memory that the side-by-side table leaves out: the libvirtd that both servers use, and, '
             'for reference, bmcd built with libvirt.so (`libvirt-library`) running the test driver '
             'in its own process, with no daemon. MiB.\n',
             '| Process | VmRSS idle | RssAnon idle | RssFile idle | Peak sampled VmRSS under load '
             '| libvirt.so mapped |', '|---|---|---|---|---|---|']

        def idle(st):
            st = st or {}
            return ' | '.join(f1(mib(st.get(k))) for k in ('VmRSS', 'RssAnon', 'RssFile'))

        def yn(v):
            return '–' if v is None else 'yes' if v else 'no'
        if D:
            L.append('| libvirtd (shared by both, counted for neither) | %s | %s | yes |'
                     % (idle(D.get('rss_idle')), f1(mib(self.daemon_peak(
                         {k: R.get(k) for k in ('compare', 'fair', 'scale')})))))
        if b:
            L.append('| bmcd (`%s`), a client of that libvirtd, as in the table above | %s | %s | %s |'
                     % (os.path.relpath(R.get('machine', {}).get('bmcd_path', '?'), ROOT),
                        idle(b.get('rss_idle')), f1(mib(b.get('rss_load', {}).get('peak_sampled'))),
                        yn(b.get('libvirt_so_mapped'))))
        if ref:
            L.append('| bmcd library build (`%s`) with the in-process test driver (`test:///default`), '
                     'reference | %s | – | %s |' % (os.path.relpath(ref['bmcd_path'], ROOT),
                                                   idle(ref.get('rss_idle')), yn(ref.get('libvirt_so_mapped'))))
        L.append('')
        if D:
            names = {'bmcd': 'bmcd', 'sushy-http': 'sushy-tools HTTP', 'sushy-https': 'sushy-tools HTTPS'}
            per = ['%s %s' % (names[k], f1(mib(self.daemon_peak(self.c[k])))) for k in self.keys]
            cpu = ['%s %s' % (names[k], f1(self.c[k]['get']['system']['load'].get('daemon_cpu_ms_per_req'), 3))
                   for k in self.keys]
            scale = []
            for n, row in sorted(R.get('scale', {}).items(), key=lambda x: int(x[0])):
                scale.append('%s domains: %s' % (fint(int(n)), ', '.join(
                    '%s %s' % (names[k], f1(mib(self.daemon_peak(row[k])))) for k in row)))
            end = D.get('rss_end', {}).get('VmHWM')
            L.append('libvirtd peak sampled VmRSS while it served each service\'s side-by-side load '
                     '(10 domains): %s MiB%s%s. The daemon runs for the whole benchmark, so each figure '
                     'may include memory that earlier load left allocated. libvirtd CPU per request, GET '
                     'one system under load: %s ms, not included in the servers\' CPU per request.'
                     % (', '.join(per),
                        '; during the scale load, ' + '; '.join(scale) + ' MiB' if scale else '',
                        '; VmHWM at the end of the run %s MiB' % f1(mib(end)) if end else '',
                        ', '.join(cpu)))
            vl = D.get('virtlogd_rss_idle', {}).get('VmRSS')
            if vl:
                L.append('virtlogd, which `libvirtd.sh` starts beside it for QEMU guests\' logs, idles '
                         'at %s MiB and is not counted either.' % f1(mib(vl)))
            L.append('')
        return L

    def _key(self, c):
        for k, v in self.c.items():
            if v is c:
                return k

    def fair_table(self):
        f, c = self.R['fair'], self.c
        L = ['### Equal-work comparisons: GET one system, 10 domains\n',
             '| Variant | bmcd req/s | sushy-tools req/s | bmcd ÷ sushy-tools '
             '| bmcd CPU ms/req | sushy-tools CPU ms/req | sushy ÷ bmcd CPU |', '|---|---|---|---|---|---|---|']

        def line(name, a, b):
            if not a:
                return
            b = b or {}
            L.append('| %s | %s | %s | %s | %s | %s | %s |' % (
                name, fint(a.get('rps')), fint(b.get('rps')), ratio(a.get('rps'), b.get('rps')),
                f1(a.get('server_cpu_ms_per_req'), 3), f1(b.get('server_cpu_ms_per_req'), 3),
                ratio(b.get('server_cpu_ms_per_req'), a.get('server_cpu_ms_per_req'))))

        def load(k):
            return c.get(k, {}).get('get', {}).get('system', {}).get('load')
        if 'sushy-http' in c:
            line('Defaults: bmcd HTTPS keep-alive vs sushy-tools plain HTTP', load('bmcd'), load('sushy-http'))
        if 'sushy-https' in c:
            line('Both HTTPS, each with its default connection handling', load('bmcd'), load('sushy-https'))
        cl = f.get('close', {})
        line('Both HTTPS, new TLS connection per request (`Connection: close`)', cl.get('bmcd'),
             cl.get('sushy-https'))
        pn = f.get('pinned', {})
        line('Server pinned to 1 CPU, wrk (`-t1`) on the other; bmcd HTTPS vs sushy-tools HTTP',
             pn.get('bmcd'), pn.get('sushy-http'))
        d = f.get('default', {})
        line('Both on `test:///default` (no node-file reload); bmcd HTTPS keep-alive vs sushy-tools HTTP',
             d.get('bmcd'), d.get('sushy-http'))
        line('Both on `test:///default`; both HTTPS, new TLS connection per request',
             d.get('bmcd-close'), d.get('sushy-https'))
        if d:
            L.append('')
            L.append('`test:///default` is libvirt\'s built-in test node, with one domain (`test`)%s. It is '
                     'shared by all connections, so opening a connection parses nothing, whereas the test '
                     'driver parses a node file again on every open. Those rows measure the two servers '
                     'without that cost.' % (', here in the private libvirtd (`test+unix:///default?socket=…`)'
                                             if self.R.get('libvirtd') else ''))
        L.append('')
        return L

    def scale_table(self):
        S = self.R['scale']
        sus = self.R.get('sushy')
        sizes = sorted(int(n) for n in S)
        names = ', '.join(fint(n) for n in sizes[:-1]) + (' and ' if len(sizes) > 1 else '') + fint(sizes[-1])
        L = ['### Scale: libvirt test-driver node with %s domains\n' % names,
             'bmcd over HTTPS; sushy-tools over plain HTTP. "One system" is the last domain of the '
             'node file. Requests/s with %d connections, latency p50 with one connection.\n'
             % self.R['params']['conns']]
        hdr = ('| Domains | bmcd start, ms | bmcd Systems GET req/s | bmcd Systems GET p50 ms '
               '| bmcd system GET req/s | bmcd system GET p50 ms | bmcd RSS idle / load peak, MiB')
        sep = '|---' * 7
        if sus:
            hdr += (' | sushy Systems GET req/s | sushy Systems GET p50 ms | sushy system GET req/s '
                    '| sushy system GET p50 ms | sushy RSS idle / load peak, MiB')
            sep += '|---' * 5
        L += [hdr + ' |', sep + '|']
        for n in sorted(S, key=int):
            b = S[n]['bmcd']
            cells = [fint(int(n)), f1(b['startup_ms']), fint(b['systems']['load']['rps']),
                     f1(b['systems']['c1']['p50_ms'], 2), fint(b['system']['load']['rps']),
                     f1(b['system']['c1']['p50_ms'], 2),
                     '%s / %s' % (f1(mib(b['rss_idle'].get('VmRSS'))), f1(mib(b['rss_load']['peak_sampled'])))]
            if sus and 'sushy-http' in S[n]:
                s = S[n]['sushy-http']
                cells += [fnum(s['systems']['load']['rps']), f1(s['systems']['c1']['p50_ms'], 2),
                          fnum(s['system']['load']['rps']), f1(s['system']['c1']['p50_ms'], 2),
                          '%s / %s' % (f1(mib(s['rss_idle'].get('VmRSS'))), f1(mib(s['rss_load']['peak_sampled'])))]
            L.append('| ' + ' | '.join(cells) + ' |')
        L.append('')
        L.append('![requests/s, latency and RSS against the number of domains](../bench/results/scale.svg)')
        L.append('')
        return L

    def budgets(self):
        """(budget, measured, met) tuples."""
        out = []
        c, R = self.c, self.R
        if 'bmcd' in c and 'sushy-http' in c:
            a = c['bmcd']['get']['system']['load']['rps']
            b = c['sushy-http']['get']['system']['load']['rps']
            out.append(('bmcd ≥ 20× sushy-tools requests/s on a system GET',
                        '%s vs %s req/s = %s (bmcd HTTPS vs sushy-tools plain HTTP, both defaults)'
                        % (fint(a), fint(b), ratio(a, b)), a >= 20 * b))
            cl = R.get('fair', {}).get('close', {})
            if 'bmcd' in cl and 'sushy-https' in cl:
                a2, b2 = cl['bmcd']['rps'], cl['sushy-https']['rps']
                out.append(('… same, both HTTPS with a TLS handshake per request',
                            '%s vs %s req/s = %s' % (fint(a2), fint(b2), ratio(a2, b2)), a2 >= 20 * b2))
            pn = R.get('fair', {}).get('pinned', {})
            if 'bmcd' in pn and 'sushy-http' in pn:
                a3, b3 = pn['bmcd']['rps'], pn['sushy-http']['rps']
                out.append(('… same, each server on one CPU (bmcd HTTPS, sushy-tools HTTP)',
                            '%s vs %s req/s = %s' % (fint(a3), fint(b3), ratio(a3, b3)), a3 >= 20 * b3))
            d = R.get('fair', {}).get('default', {})
            if 'bmcd' in d and 'sushy-http' in d:
                a4, b4 = d['bmcd']['rps'], d['sushy-http']['rps']
                out.append(('… same, both on `test:///default` (no node-file reload per libvirt connection)',
                            '%s vs %s req/s = %s' % (fint(a4), fint(b4), ratio(a4, b4)), a4 >= 20 * b4))
            if 'bmcd-close' in d and 'sushy-https' in d:
                a5, b5 = d['bmcd-close']['rps'], d['sushy-https']['rps']
                out.append(('… same, both on `test:///default`, both HTTPS with a TLS handshake per request',
                            '%s vs %s req/s = %s' % (fint(a5), fint(b5), ratio(a5, b5)), a5 >= 20 * b5))
            for what, key in (('idle', 'VmRSS'), ('under load', 'VmHWM')):
                src = 'rss_idle' if what == 'idle' else 'rss_load'
                a, b = c['bmcd'][src].get(key), c['sushy-http'][src].get(key)
                out.append(('RSS ≤ 1/5 of sushy-tools, %s (%s)' % (what, key),
                            '%s vs %s MiB = 1/%s' % (f1(mib(a)), f1(mib(b)), f1(b / a if a else None)),
                            a is not None and b is not None and a * 5 <= b))
        sz = R.get('sizes', {}).get('bmcd_bytes')
        if sz:
            out.append(('bmcd binary ≤ 4 MiB', '%s bytes = %.2f MiB' % (fint(sz), sz / 2**20), sz <= 4 * 2**20))
        st = R.get('startup', {}).get('bmcd')
        if st:
            out.append(('Start to first 200 ≤ 100 ms (state dir exists)',
                        'median %s ms of %d starts (%s)' % (f1(st['warm_median_ms']), len(st['warm_ms']),
                                                            ', '.join(f1(x) for x in st['warm_ms'])),
                        st['warm_median_ms'] <= 100))
            out.append(('… first start ever (empty state dir)',
                        'median %s ms of %d starts' % (f1(st['cold_median_ms']), len(st['cold_ms'])),
                        st['cold_median_ms'] <= 100))
            for n, row in sorted(R.get('scale', {}).items(), key=lambda x: int(x[0])):
                if int(n) > 10 and row.get('bmcd', {}).get('startup_ms'):
                    ms = row['bmcd']['startup_ms']
                    out.append(('… with %s domains (state dir exists)' % fint(int(n)),
                                'median %s ms of %d starts' % (f1(ms), R['params']['scale_startup_runs']),
                                ms <= 100))
        return out

    def budget_table(self):
        L = ['### Budgets\n', '| Budget | Measured | Met? |', '|---|---|---|']
        for name, measured, met in self.budgets():
            L.append('| %s | %s | %s |' % (name, measured, 'yes' if met else '**no**'))
        L.append('')
        return L

    def commands(self):
        L = ['### Exact load commands (first run of each)\n', '```']
        seen = set()
        for k, c in self.c.items():
            for g in c['get'].values():
                for s in (g['load'], g['c1']):
                    if s['cmd'] not in seen:
                        seen.add(s['cmd'])
                        L.append(s['cmd'])
        for kind in ('close', 'pinned', 'default'):
            for k, s in self.R.get('fair', {}).get(kind, {}).items():
                L.append(('taskset -c 0 ' if kind == 'pinned' else '') + s['cmd'] +
                         ('   # server threads on CPU 1' if kind == 'pinned' else ''))
        L.append('```')
        L.append('')
        scale = []
        for n, row in sorted(self.R.get('scale', {}).items(), key=lambda x: int(x[0])):
            for k, r in row.items():
                for pk in ('systems', 'system'):
                    scale += [r[pk]['load']['cmd'], r[pk]['c1']['cmd']]
        if scale:
            L += ['<details><summary>Scale phase commands (durations and timeouts adapt to the '
                  'service\'s speed)</summary>', '', '```'] + scale + ['```', '', '</details>', '']
        if self.R.get('libvirtd'):
            bin_ = os.path.relpath(self.R.get('machine', {}).get('bmcd_path', '?'), ROOT)
            L.append('Ports are picked free at each start. One libvirtd was started for the run as '
                     '`tests/e2e/libvirtd.sh start DIR` (DIR is `libvirtd/` in the results folder) and '
                     'stopped with `tests/e2e/libvirtd.sh stop DIR`. URI stands for '
                     '`test+unix:///.../node-N.xml?socket=DIR/run/libvirt/libvirt-sock` (or '
                     '`test+unix:///default?socket=...`). bmcd was started as `BMCD_ADMIN_PASSWORD=... '
                     '%s --listen 127.0.0.1:PORT --libvirt-uri URI --state-dir STATE`; sushy-tools as '
                     '`target/bench-venv/bin/sushy-emulator -i 127.0.0.1 -p PORT --libvirt-uri URI '
                     '[--ssl-certificate CRT --ssl-key KEY]`.' % bin_)
            ref = self.R.get('reference')
            if ref:
                L.append('')
                L.append('The reference: `BMCD_ADMIN_PASSWORD=... %s --listen 127.0.0.1:PORT --libvirt-uri '
                         'test:///default --state-dir STATE`, VmRSS read 1 s after its first 200.'
                         % os.path.relpath(ref['bmcd_path'], ROOT))
        else:
            L.append('Ports are picked free at each start. bmcd was started as `BMCD_ADMIN_PASSWORD=... '
                     'target/release/bmcd --listen 127.0.0.1:PORT --libvirt-uri test:///.../node-N.xml '
                     '--state-dir DIR`; sushy-tools as `target/bench-venv/bin/sushy-emulator -i 127.0.0.1 '
                     '-p PORT --libvirt-uri test:///.../node-N.xml [--ssl-certificate CRT --ssl-key KEY]`.')
        L.append('')
        return L


def regenerate(args):
    with open(args.from_results) as f:
        R = json.load(f)
    out = os.path.abspath(args.out or os.path.dirname(os.path.abspath(args.from_results)))
    os.makedirs(out, exist_ok=True)
    report = Report(R).markdown()
    with open(os.path.join(out, 'report.md'), 'w') as f:
        f.write(report)
    if 'scale' in R:
        with open(os.path.join(out, 'scale.svg'), 'w') as f:
            f.write(plot.scale_svg(R))
    if os.path.abspath(args.from_results) != os.path.join(out, 'results.json'):
        shutil.copy(args.from_results, os.path.join(out, 'results.json'))
    if args.publish:
        publish(out, report)
    log('report regenerated in %s' % out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--mode', choices=sorted(MODES), default='full')
    ap.add_argument('--out', help='results folder (default target/bench/MODE-TIMESTAMP)')
    ap.add_argument('--bmcd', default=os.path.join(ROOT, 'target', 'release', 'bmcd-lean'),
                    help='the bmcd measured against sushy-tools (default target/release/bmcd-lean, '
                    'from make release-lean)')
    ap.add_argument('--bmcd-library', metavar='PATH',
                    help='a bmcd built with the libvirt-library feature (links libvirt.so): its idle '
                    'RSS on the in-process test:///default is reported as a reference (default '
                    'target/release/bmcd if it exists)')
    ap.add_argument('--no-sushy', action='store_true', help='measure bmcd only')
    ap.add_argument('--sizes', help='domain counts of the scale phase, e.g. 10,100 (default: '
                    + '; '.join('%s %s' % (k, ','.join(map(str, v['sizes']))) for k, v in sorted(MODES.items())) + ')')
    ap.add_argument('--publish', action='store_true',
                    help='update bench/results/ and the generated part of docs/performance.md')
    ap.add_argument('--from-results', metavar='RESULTS_JSON',
                    help='measure nothing: rewrite report.md and scale.svg (and, with --publish, '
                    'the published copies) from an earlier run\'s results.json')
    args = ap.parse_args()
    if args.from_results:
        return regenerate(args)
    b = Bench(args)

    def on_signal(sig, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one cleanup, not interrupted
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log('signal %d: stopping the services and the private libvirtd' % sig)
        b.close()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return b.run()
    finally:
        b.close()


if __name__ == '__main__':
    sys.exit(main())
