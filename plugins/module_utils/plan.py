# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of one replica's run, decided once from what was read.

Input: the replica's diagnosis (replication_info on the replica, then on the primary,
through the diagnosis filter), the primary's read, and the role's settings. Output: what
the later steps take and never derive again - whether to rebuild and why, why a replica is
left alone, what stops a rebuild before anything changes, replication over TLS or not, the
datadir and where the copy goes, the server's unit. Pure: no I/O (plugins/filter/rebuild_plan.py
applies it on the controller).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.reseed.mariadb.plugins.module_utils.datadir import normalize, suggested_staging

TRUE_WORDS = ('true', 'yes', 'on', '1', 'y', 't')


def truthy(value):
    """A boolean as Ansible's bool filter reads one (true, yes, on, 1), from a bool or a word."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


def primary_tls(setting, primary, diagnosis, certificate_given):
    """Whether replication connects to the primary over TLS. auto keeps the replica's own
    MASTER_SSL=1, else follows the primary (11.4+ servers accept TLS by themselves, and
    11.4+ replicas ask for it unless told MASTER_SSL=0), or a CA, certificate or key given."""
    if str(setting).strip().lower() != 'auto':
        return truthy(setting)
    own = [c for c in diagnosis.get('connections') or []
           if c.get('connection_name', '') == '' and c.get('ssl_allowed') == 'Yes']
    return bool(primary.get('tls') or own or certificate_given)


def why_rebuild(diagnosis, force):
    """'forced', 'diagnosis' (needs_rebuild), 'not_configured' (seeded: the same job), or ''.
    A replica whose server is down is rebuilt only when forced."""
    if force:
        return 'forced'
    if diagnosis.get('needs_rebuild'):
        return 'diagnosis'
    if diagnosis.get('state') == 'not_configured':
        return 'not_configured'
    return ''


def left_alone(host, diagnosis, source):
    """Why a replica that is down and not forced is left alone, with what to do."""
    if diagnosis.get('server_pids'):
        todo = 'replica_rebuild_force=true would not stop that process either'
    else:
        todo = 'replica_rebuild_force=true rebuilds it from %s' % source
    return ('%s: %s: nothing on this replica was touched; %s.'
            % (host, diagnosis.get('reason', 'its server is down'), todo))


def source_problem(host, source, source_auto):
    if host != source:
        return None
    if source_auto:
        todo = ('chosen by replica_rebuild_source auto while it was healthy: run again, the '
                'next run chooses another donor')
    else:
        todo = 'replica_rebuild_source: rebuild it from another source, or from the primary first'
    return ('%s: this replica needs a rebuild and is the source of the copy (%s). Nothing '
            'was changed on it.' % (host, todo))


def paths_problem(host, diagnosis):
    """What stops a rebuild at the replica's server and datadir, before any copy: a server
    that runs but does not answer, one outside its unit or a datadir its unit cannot see
    (module_utils/service.py, read by replication_info), a datadir or its mount unknown."""
    reason = diagnosis.get('reason', '')
    if diagnosis.get('state') == 'down' and diagnosis.get('server_pids'):
        return ('%s: paths: %s; nothing was changed (a server that runs is not stopped behind '
                'its back).' % (host, reason))
    service = diagnosis.get('server_service') or {}
    for problem in (service.get('outside_unit'), service.get('sandbox_problem')):
        if problem:
            return '%s: paths: %s; nothing was changed.' % (host, problem)
    if not diagnosis.get('datadir'):
        return ("%s: paths: the replica's datadir is unknown (%s): fix its option files; "
                "nothing was changed." % (host, reason))
    if not isinstance(diagnosis.get('datadir_mount'), dict):
        return ('%s: paths: the mount that holds the datadir %s is unknown (replication_info '
                'could not read /proc/self/mountinfo; see its warning): nothing was changed.'
                % (host, diagnosis['datadir']))
    return None


def plan(diagnosis, primary, host, source, force=False, source_auto=False,
         primary_ssl='auto', primary_ssl_given=False):
    """The plan of host's run: a dict (see plugins/filter/rebuild_plan.yml)."""
    why = why_rebuild(diagnosis, truthy(force))
    out = dict(state=diagnosis.get('state'), reason=diagnosis.get('reason', ''),
               rebuild=bool(why), why=why, left_alone='', problem='',
               primary_tls=primary_tls(primary_ssl, primary or {}, diagnosis, primary_ssl_given),
               datadir='', staging='', datadir_mount_point=None,
               server_service=diagnosis.get('server_service'))
    if diagnosis.get('state') == 'down' and not why:
        out['left_alone'] = left_alone(host, diagnosis, source)
    if why:
        out['problem'] = (source_problem(host, source, truthy(source_auto))
                          or paths_problem(host, diagnosis) or '')
    if diagnosis.get('datadir') and isinstance(diagnosis.get('datadir_mount'), dict):
        datadir = normalize(diagnosis['datadir'])
        mounted = bool(diagnosis['datadir_mount'].get('mount_point'))
        out.update(datadir=datadir, datadir_mount_point=mounted,
                   staging=suggested_staging(datadir, mounted))
    return out
