# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's markdown table, its targets (issue 7) and its chart."""

from __future__ import annotations

import os

KINDS = {  # kind: (legend, colour), in the legend's order
    'info': ('information', '#9e9e9e'),
    'limit': ('limit: a stage alone', '#1f77b4'),
    'raw': ('raw: tar | ssh | tar', '#8c564b'),
    'naive': ('naive: the hand pipeline', '#ff7f0e'),
    'ours': ('ours: backup_stream', '#2ca02c'),
    'logical': ('logical copy', '#d62728'),
    'playbook': ('playbook: the whole rebuild', '#9467bd'),
    'fleet': ('fleet: 4 replicas, or 1 alone', '#17becf'),
}

HEADER = """\
Both ends of the lab run on the same {cpus} cores, so the **CPU floor** (the step's busy CPU
seconds, machine-wide from /proc/stat, divided by {cpus}) is the honest limit of a step: it
cannot end sooner than that unless it uses less CPU. The CPU is the whole machine's: anything
else running at the time counts too. Columns: *x hand pipeline* = the hand pipeline's seconds
/ this step's (higher is better); *x slowest stage* = this step's seconds / the slowest of its
stages alone (mariadb-backup to /dev/null; ssh alone or socat alone; mbstream -p N), and *x
CPU floor* = seconds / CPU floor (1.00 is the limit, lower is better). Shaped-link rows are
compared with nothing measured on an open link. Seconds are the median of {repeat} run(s);
`backup_stream` rows are the module's own wall time (its CPU: the same window).
"""


def fmt(value, spec='%.2f'):
    return '' if value is None else spec % value


def find(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def stages_of(rows, row):
    """The stages alone of a stream (mariadb-backup to /dev/null, its transport alone,
    mbstream at its -p from a file), or None when one is missing."""
    names = ('backup', row['transport'], 'mbstream-%d' % row.get('extract_p', 1))
    found = [find(rows, stage=n) for n in names]
    return [f[0] for f in found] if all(found) else None


def slowest_stage(rows, row):
    """The slowest stage alone that bounds `row` (a stream with a transport), or None."""
    if not row.get('transport') or row.get('link'):
        return None
    stages = stages_of(rows, row)
    return max(stages, key=lambda r: r['seconds']) if stages else None


def ratios(rows, row):
    """(x hand pipeline, x slowest stage, x CPU floor) of a row; None where meaningless."""
    naive = find(rows, kind='naive')
    compare = not row.get('link') and row.get('part') in (None, 'stream')  # moves the data
    x_hand = (naive[0]['seconds'] / row['seconds']
              if naive and compare and row['seconds'] else None)
    stage = slowest_stage(rows, row)
    x_stage = row['seconds'] / stage['seconds'] if stage and stage['seconds'] else None
    x_floor = (row['seconds'] / row['cpu_floor_s']
               if row.get('cpu_floor_s') and row['seconds'] else None)
    return x_hand, x_stage, x_floor


def table(rows):
    lines = ['| step | kind | seconds | MB/s | CPU s | CPU floor s | x hand pipeline | '
             'x slowest stage | x CPU floor |', '|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        x_hand, x_stage, x_floor = ratios(rows, r)
        lines.append('| %s | %s | %.2f | %s | %s | %s | %s | %s | %s |' % (
            r['name'].replace('|', '\\|'), r['kind'], r['seconds'], fmt(r['mb_s'], '%.1f'),
            fmt(r['cpu_s']), fmt(r['cpu_floor_s']), fmt(x_hand), fmt(x_stage),
            fmt(x_floor)))
    return '\n'.join(lines)


def fastest(rows, **match):
    found = [r for r in find(rows, kind='ours', **match) if not r.get('link')]
    return min(found, key=lambda r: r['seconds']) if found else None


def target(text, figures=None, ok=None):
    """One line of the targets: figures None when the run did not measure it."""
    return (text, figures or 'not measured in this run',
            'not measured' if figures is None else ('met' if ok else 'NOT MET'))


def stream_targets(rows):
    out = []
    for transport in ('tls', 'tcp', 'ssh'):
        best = fastest(rows, transport=transport)
        stage = best and slowest_stage(rows, best)
        text = '%s stream <= 1.3x its slowest stage alone' % transport
        if not stage:
            out.append(target(text))
            continue
        x = best['seconds'] / stage['seconds']
        out.append(target(text, '%s: %.2f s; slowest stage: %s, %.2f s; %.2fx' % (
            best['name'], best['seconds'], stage['name'], stage['seconds'], x), x <= 1.3))
    out.append(hand_target(rows, 'ours'))
    return out


def hand_target(rows, who, **match):
    """`who` (our fastest stream, of those that match) at least 1.5x faster than the hand
    pipeline."""
    best, naive = fastest(rows, **match), find(rows, kind='naive')
    text = '%s >= 1.5x faster than the hand pipeline' % who
    if not (best and naive):
        return target(text)
    x = naive[0]['seconds'] / best['seconds']
    return target(text, '%.2f s vs %.2f s: %.2fx' % (best['seconds'], naive[0]['seconds'], x),
                  x >= 1.5)


def tls_targets(rows):
    """Issue 12's: tls against the hand pipeline and against tcp at the same settings, and
    each stream's CPU against the sum of its stages alone."""
    out = [hand_target(rows, 'tls', transport='tls')]
    tls = fastest(rows, transport='tls')
    keys = ('compression', 'parallel', 'extract_p')
    same = tls and [r for r in find(rows, kind='ours', transport='tcp') if not r.get('link')
                    and all(r.get(k) == tls.get(k) for k in keys)]
    text = 'tls within 1.3x of tcp (same settings)'
    out.append(target(text, same and '%.2f s vs %.2f s: %.2fx (CPU floor %.2f s vs %.2f s)' % (
        tls['seconds'], same[0]['seconds'], tls['seconds'] / same[0]['seconds'],
        tls['cpu_floor_s'] or 0, same[0]['cpu_floor_s'] or 0),
        same and tls['seconds'] / same[0]['seconds'] <= 1.3))
    for row in [r for r in find(rows, kind='ours') if r.get('transport') in ('tls', 'tcp')
                and not r.get('link') and r.get('compression') == 'none']:
        stages = stages_of(rows, row)
        parts = stages and all(r.get('cpu_s') is not None for r in stages) and \
            [r['cpu_s'] for r in stages]
        text = '%s: CPU <= 1.3x its stages alone' % row['name']
        out.append(target(text, parts and row.get('cpu_s') is not None and
                          '%.2f CPU s vs %s = %.2f: %.2fx' % (
                              row['cpu_s'], ' + '.join('%.2f' % c for c in parts), sum(parts),
                              row['cpu_s'] / sum(parts)),
                          parts and row['cpu_s'] <= 1.3 * sum(parts)))
    return out


def logical_target(rows):
    best = fastest(rows)
    dump = find(rows, kind='logical', name='mariadb-dump --single-transaction --quick | mariadb')
    wall = [r for r in find(rows, kind='playbook') if not r.get('part')]
    text = 'ours >= 10x faster than mariadb-dump | mariadb'
    if not (best and dump):
        return [target(text)]
    x = dump[0]['seconds'] / best['seconds']
    figures = 'fastest stream %.2f s vs %.2f s: %.1fx' % (best['seconds'], dump[0]['seconds'], x)
    if wall:
        figures += '; the whole playbook %.2f s: %.1fx' % (
            wall[0]['seconds'], dump[0]['seconds'] / wall[0]['seconds'])
    return [target(text, figures, x >= 10)]


def playbook_targets(rows):
    wall = [r for r in find(rows, kind='playbook') if not r.get('part')]
    part = dict((r['part'], r['seconds']) for r in find(rows, kind='playbook') if r.get('part'))
    out = []
    text = 'playbook (start to healthy replica) <= stream + prepare + 30 s'
    if wall and 'healthy' in part and 'stream' in part and 'prepare' in part:
        limit = part['stream'] + part['prepare'] + 30
        out.append(target(text, '%.2f s vs %.2f + %.2f + 30 = %.2f s (then %s s checking '
                          'every table; the whole run %.2f s)' % (
                              part['healthy'], part['stream'], part['prepare'], limit,
                              fmt(part.get('verify')), wall[0]['seconds']),
                          part['healthy'] <= limit))
    else:
        out.append(target(text))
    text = 'replica downtime <= 15 s'
    probe, swap = part.get('downtime_probe'), part.get('downtime_swap')
    if probe is None:
        out.append(target(text))
    else:
        out.append(target(text, 'probed from the controller %.2f s; datadir_swap says %s s' % (
            probe, fmt(swap)), probe <= 15 and (swap or 0) <= 15))
    return out


def shaped_targets(rows):
    out = []
    shaped = [r for r in rows if r.get('link') and r.get('transport')]  # not the fleet's
    for rate, transport in dict.fromkeys((r['link'], r['transport']) for r in shaped):
        by = dict((r['compression'], r) for r in find(shaped, link=rate, transport=transport))
        if not all(c in by for c in ('none', 'zstd', 'auto')):
            continue
        auto, none = by['auto'], by['none']
        better = min(none, by['zstd'], key=lambda r: r['seconds'])
        out.append(target('%s, %s: auto within 10%% of the better of none and zstd'
                          % (rate, transport),
                          'auto (chose %s) %.2f s; %s %.2f s' % (
                              (auto.get('auto') or {}).get('chosen'), auto['seconds'],
                              better['compression'], better['seconds']),
                          auto['seconds'] <= 1.1 * better['seconds']))
        if rate == '1gbit':
            x = auto['mb_s'] / none['mb_s']
            out.append(target('1gbit, %s: auto >= 2x the effective rate of none' % transport,
                              'auto %.1f MB/s, none %.1f MB/s: %.2fx' % (
                                  auto['mb_s'], none['mb_s'], x), x >= 2))
    return out or [target('shaped links: auto within 10% of the better of none and zstd; '
                          '>= 2x none at 1gbit')]


def fleet_runs(rows):
    """{mode: wall row} of the fleet section: single, fleet, serial (those measured)."""
    return dict((r['fleet'], r) for r in find(rows, kind='fleet', part='wall'))


def gb(n):
    return fmt(n / 1e9 if n is not None else None, '%.3f')


def times(n, of):
    return '%.2fx' % (n / of) if n is not None and of else ''


FLEET_HEADER = """\
### Fleet (issue 13): the primary's own counters

*backups*: the primary's mariadb-backup --backup processes; *read*: the bytes its
mariadb-backup processes read (rchar of /proc/<pid>/io, sampled inside the primary every
0.05 s: every read call, from the page cache or the disk, re-reads included, so it may exceed
the stream); *from disk*: what the disk had to fetch (read_bytes; the page cache is warm);
*sent*: eth0's tx_bytes in the primary's namespace, after - before (all it sent: the stream,
replication, the checks, Ansible's ssh). *x copy*: over the single run's stream
(backup_stream's bytes_read, {copy} GB). Downtime: the longest outage a client saw on each
replica (a login every 0.1 s). *CPU s by host*: the CPU seconds each lab host's processes
used in the run (fleet.host_cpu_seconds). Links: {link}.
"""
FLEET_COLUMNS = ('run', 'seconds', 'CPU floor s', 'x CPU floor', 'x single', 'backups',
                 'read GB', 'x copy', 'from disk GB', 'sent GB', 'x copy',
                 'longest downtime s', 'CPU s by host')


def fleet_table(rows):
    runs = fleet_runs(rows)
    if not runs:
        return []
    single = runs.get('single', {}).get('seconds')
    copy = runs.get('single', {}).get('copy')
    link = runs.get('single', runs.get('fleet', {})).get('link')
    links = 'every host shaped to %s both ways' % link if link else 'not shaped'
    lines = [FLEET_HEADER.format(copy=gb(copy), link=links), '| %s |' % ' | '.join(FLEET_COLUMNS),
             '|---|' + '---:|' * (len(FLEET_COLUMNS) - 2) + '---|']
    for mode in ('single', 'fleet', 'serial'):
        r = runs.get(mode)
        if not r:
            continue
        down = ', '.join('%s %.2f' % kv for kv in sorted(r['downtime'].items()))
        cells = ('%s (compression %s)' % (mode, r.get('compression')), '%.2f' % r['seconds'],
                 fmt(r['cpu_floor_s']), fmt(ratios(rows, r)[2]), times(r['seconds'], single),
                 str(r['backups']), gb(r['read']), times(r['read'], copy), gb(r['read_disk']),
                 gb(r['sent']), times(r['sent'], copy), down,
                 ', '.join('%s %.1f' % kv for kv in sorted((r.get('host_cpu') or {}).items())))
        lines.append('| %s |' % ' | '.join(cells))
    return ['', '\n'.join(lines)]


def fleet_targets(rows):
    runs = fleet_runs(rows)
    single, fleet, serial = (runs.get(m) for m in ('single', 'fleet', 'serial'))
    copy = single and single.get('copy')
    out = []
    # On shaped links (the link the limit, issue 24) the targets are issue 24's; on the
    # lab's open links, issue 13's.
    shaped = (single or fleet or {}).get('link')
    most, least = (1.3, 3) if shaped else (1.5, 2.5)
    on = ' on links of %s' % shaped if shaped else ''
    text = 'fleet of 4 <= %gx a single replica (end to end, verified)%s' % (most, on)
    out.append(target(text, fleet and single and '%.2f s vs %.2f s: %.2fx' % (
        fleet['seconds'], single['seconds'], fleet['seconds'] / single['seconds']),
        fleet and single and fleet['seconds'] <= most * single['seconds']))
    text = 'fleet >= %gx faster than one at a time%s' % (least, on)
    out.append(target(text, fleet and serial and '%.2f s vs %.2f s: %.2fx' % (
        fleet['seconds'], serial['seconds'], serial['seconds'] / fleet['seconds']),
        fleet and serial and serial['seconds'] >= least * fleet['seconds']))
    for key, what in (('read', "read by the primary's mariadb-backup"),
                      ('sent', "sent on the primary's eth0")):
        text = 'bytes %s: about 1x the copy for the fleet (<= 1.25x)' % what
        out.append(target(text, fleet and copy and '%s GB, %s the copy of %s GB (serial: %s)' % (
            gb(fleet[key]), times(fleet[key], copy), gb(copy),
            times(serial[key], copy) if serial else 'not run'),
            fleet and copy and fleet[key] <= 1.25 * copy))
    for r in (fleet, serial, single):
        if r:
            worst = max(r['downtime'].items(), key=lambda kv: kv[1])
            out.append(target('%s: each replica down <= 15 s' % r['fleet'],
                              'longest %.2f s (%s)' % (worst[1], worst[0]), worst[1] <= 15))
    return out


def targets(rows):
    """[(target, figures, verdict)] for each issue-7 target, issue 12's, and issue 13's when
    the fleet section ran."""
    return (stream_targets(rows) + tls_targets(rows) + logical_target(rows) + playbook_targets(rows) +
            shaped_targets(rows) + (fleet_targets(rows) if fleet_runs(rows) else []))


def markdown(head, rows, notes, errors, repeat):
    lines = [head, '', HEADER.format(cpus=os.cpu_count(), repeat=repeat), table(rows), '']
    lines += ['- ' + n for n in notes]
    lines += ['- **section %s failed**: %s' % e for e in errors]
    lines += fleet_table(rows)
    lines += ['', '### Targets', '']
    lines += ['- %s: %s -- **%s**' % t for t in targets(rows)]
    return '\n'.join(lines) + '\n'


def chart(rows, path, title):
    """One horizontal bar per step, coloured by kind; shaped-link rows hatched."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(13, 1.6 + 0.3 * len(rows)))
    seconds = [r['seconds'] for r in rows]
    positive = [s for s in seconds if s > 0] or [1.0]
    log = max(positive) / min(positive) > 20
    floor = min(positive) / 2 if log else 0
    y = range(len(rows))
    ax.barh(y, [max(s, floor) for s in seconds], color=[KINDS[r['kind']][1] for r in rows],
            hatch=None, edgecolor='white')
    for i, r in enumerate(rows):
        if r.get('link'):
            ax.barh(i, max(r['seconds'], floor), color='none', hatch='//', edgecolor='black',
                    linewidth=0)
        ax.text(max(r['seconds'], floor), i, ' %.2f s' % r['seconds'], va='center',
                fontsize=8)
    ax.set_yticks(list(y))
    ax.set_yticklabels([r['name'] if len(r['name']) <= 75 else r['name'][:72] + '...'
                        for r in rows], fontsize=8)
    ax.invert_yaxis()
    if log:
        ax.set_xscale('log')
    ax.set_xlabel('seconds (median)%s' % (', log scale' if log else ''))
    ax.margins(x=0.12)
    kinds = [k for k in KINDS if any(r['kind'] == k for r in rows)]
    handles = [Patch(color=KINDS[k][1], label=KINDS[k][0]) for k in kinds]
    if any(r.get('link') for r in rows):
        handles.append(Patch(facecolor='white', edgecolor='black', hatch='//',
                             label='on a shaped link'))
    ax.legend(handles=handles, loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
