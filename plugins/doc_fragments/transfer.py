# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The options both ends of the stream share (backup_stream on the source, backup_receive
    # on the replica): the connection between them and how each proves who it is.
    # plugins/module_utils/transfer.py builds the argument spec (transfer_argument_spec).
    DOCUMENTATION = r'''
options:
  port:
    description: The receiver's TCP port on the replica (with C(transport=ssh), on the replica's loopback).
    type: int
    default: 4444
  token:
    description:
      - This run's token, the same at both ends; the source presents it first. Drawn at
        random per run by the role.
      - Required unless O(preflight=true).
    type: str
  preflight:
    description:
      - Run only the checks this end makes before anything starts (as check mode does) and
        report what they found; nothing changes, no connection is made, and O(token) is not
        needed.
      - The role runs the receiver's in every run, before anything starts, and the
        source's in check mode.
    type: bool
    default: false
  tls_cert:
    description: This end's certificate (PEM file), with C(transport=tls) (M(reseed.mariadb.transfer_cert) makes one).
    type: path
  tls_key:
    description: This end's private key (PEM file), with C(transport=tls).
    type: path
  peer_cert:
    description: The other end's certificate for this run (PEM text), the only one accepted, with C(transport=tls).
    type: str
  stall_timeout:
    description:
      - Seconds without a byte moving on the connection after which the link is taken for
        cut and the stream fails (the source sends a keepalive every 10 seconds while
        mariadb-backup is quiet).
    type: int
    default: 60
'''
