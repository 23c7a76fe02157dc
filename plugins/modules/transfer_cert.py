#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: transfer_cert
short_description: Make, or remove, this host's throwaway certificate for one backup stream
version_added: 0.1.0
description:
  - With C(state=present), makes a new private key and a self-signed certificate (EC
    P-256, valid for two days) in a new private temporary directory (mode 0700) and returns
    the certificate, its SHA-256 fingerprint and the files' paths. The private key never
    leaves this host; the certificate is what the other end of the stream pins.
  - With C(state=absent), removes such a directory (I(path)), and with I(prefix) every
    directory of that prefix in the temporary directory (those of interrupted runs).
  - M(reseed.mariadb.backup_stream) and M(reseed.mariadb.backup_receive) use the pair of
    each end with C(transport=tls); each presents its own and accepts only the other's.
options:
  state:
    description: C(present) makes a new one (always), C(absent) removes.
    type: str
    choices: [present, absent]
    default: present
  path:
    description: With C(state=absent), the directory a C(present) run returned.
    type: path
  prefix:
    description:
      - The directory name's prefix (C(reseed-cert-<prefix>-)), e.g. the run's replica; with
        C(state=absent), every directory of that prefix goes.
    type: str
    default: run
  common_name:
    description: The certificate's subject CN (for people reading logs; nothing checks it).
    type: str
    default: reseed-transfer
  tmpdir:
    description: Where to make the directory; the system's temporary directory when omitted.
    type: path
notes:
  - Needs the C(openssl) program.
  - Supports check mode (reports what it would do).
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Make the replica's certificate for this stream
  reseed.mariadb.transfer_cert:
    prefix: db2
  register: replica_cert

- name: Remove it
  reseed.mariadb.transfer_cert:
    state: absent
    path: "{{ replica_cert.path }}"
'''

RETURN = r'''
path:
  description: The private directory holding the key and the certificate.
  returned: state=present
  type: str
  sample: /tmp/reseed-cert-db2-k2j3h4g5
cert_file:
  description: The certificate's file.
  returned: state=present
  type: str
key_file:
  description: The private key's file (mode 0600).
  returned: state=present
  type: str
cert:
  description: The certificate (PEM).
  returned: state=present
  type: str
fingerprint:
  description: SHA-256 of the certificate (DER), hex pairs.
  returned: state=present
  type: str
  sample: "3f:a2:..."
removed:
  description: The directories removed.
  returned: state=absent
  type: list
  elements: str
failure:
  description:
    - "What failed, in fields (C(msg) is C(transfer_cert: <message>)); C(step) (C(make) for
      I(state=present), C(remove) for I(state=absent)), C(side) (C(source), C(replica) or
      C(link): always C(link) here - the pair is the stream's, made on either end),
      C(code), C(changed_nothing) (always true: a directory made for a certificate that
      failed is removed), C(message)."
    - C(make) C(no_openssl), C(openssl_failed). C(remove) C(not_cert_dir) (I(path) is not a
      directory of I(prefix)).
  returned: on failure
  type: dict
  sample: {step: make, side: link, code: no_openssl, changed_nothing: true,
           message: "openssl is not installed on this host (package openssl): the tls transport needs it"}
'''

import glob
import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import failure
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure
from ansible_collections.reseed.mariadb.plugins.module_utils.transfer import fingerprint

NAME = 'reseed-cert-%s-'
# The pair serves the stream between the two hosts, and is made on either end of it.
SIDE = 'link'


def remove(module, p, prefix, base):
    """State absent: the directory given, and every one of the prefix."""
    found = [d for d in glob.glob(os.path.join(base, NAME % prefix + '*')) if os.path.isdir(d)]
    if p['path']:
        if not os.path.basename(p['path']).startswith(NAME % prefix):
            raise Failure('remove', SIDE, 'not_cert_dir', '%s is not a transfer certificate '
                          'directory of %s' % (p['path'], prefix))
        found = sorted(set(found) | set([p['path']] if os.path.isdir(p['path']) else []))
    if not module.check_mode:
        for d in found:
            shutil.rmtree(d, ignore_errors=True)
    return dict(changed=bool(found), removed=found)


def make(module, p, prefix, base):
    """State present: a new key and certificate in a new private directory."""
    if module.check_mode:
        return dict(changed=True, msg='would make a key and a certificate in %s' % base)
    openssl = module.get_bin_path('openssl')
    if not openssl:
        raise Failure('make', SIDE, 'no_openssl', 'openssl is not installed on this host '
                      '(package openssl): the tls transport needs it')
    path = tempfile.mkdtemp(prefix=NAME % prefix, dir=base)  # mode 0700
    key_file, cert_file = os.path.join(path, 'key.pem'), os.path.join(path, 'cert.pem')
    old = os.umask(0o077)
    try:
        rc, out, err = module.run_command([
            openssl, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
            '-nodes', '-days', '2', '-sha256', '-subj', '/CN=%s' % p['common_name'],
            '-keyout', key_file, '-out', cert_file])
    finally:
        os.umask(old)
    if rc != 0:
        shutil.rmtree(path, ignore_errors=True)
        raise Failure('make', SIDE, 'openssl_failed', 'openssl could not make a certificate '
                      '(exit code %d): %s' % (rc, ' | '.join(err.strip().splitlines()[-3:])))
    with open(cert_file) as f:
        cert = f.read()
    return dict(changed=True, path=path, cert_file=cert_file, key_file=key_file, cert=cert,
                fingerprint=fingerprint(cert))


def main():
    module = AnsibleModule(argument_spec=dict(
        state=dict(type='str', default='present', choices=['present', 'absent']),
        path=dict(type='path'),
        prefix=dict(type='str', default='run'),
        common_name=dict(type='str', default='reseed-transfer'),
        tmpdir=dict(type='path'),
    ), supports_check_mode=True)
    p = module.params
    prefix = re.sub(r'[^\w.-]', '_', p['prefix'])
    base = p['tmpdir'] or tempfile.gettempdir()
    result = {}
    try:
        result = (remove if p['state'] == 'absent' else make)(module, p, prefix, base)
    except Failure as e:
        failure.fail(module, e, 'transfer_cert')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
