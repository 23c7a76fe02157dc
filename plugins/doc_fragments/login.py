# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The login options shared by every module that talks to a MariaDB server.
    # Names and meanings follow community.mysql, so playbooks can switch over unchanged.
    DOCUMENTATION = r'''
options:
  login_user:
    description:
      - The account used to connect to the server.
      - When omitted, the user from I(config_file) is used, else the operating system
        user the module runs as (C(root) with Ansible's C(become)), which Debian lets in
        over the unix socket without a password.
    type: str
  login_password:
    description:
      - The password for I(login_user). Never logged nor returned.
    type: str
  login_host:
    description:
      - Host running the server. With C(localhost) (the default) and no
        I(login_unix_socket), the module connects over the server's default unix socket
        when it exists, as the C(mariadb) command-line client does.
    type: str
    default: localhost
  login_port:
    description:
      - TCP port of the server, used when connecting over TCP.
    type: int
    default: 3306
  login_unix_socket:
    description:
      - Path to the server's unix socket. Takes precedence over I(login_host).
    type: str
  config_file:
    description:
      - An option file (C([client]) section) read for the user, password, host, port and
        socket, like the C(mariadb) client's C(--defaults-extra-file). Ignored when it
        does not exist.
    type: path
    default: '~/.my.cnf'
  connect_timeout:
    description:
      - Seconds to wait for the connection to the server.
    type: int
    default: 30
  ca_cert:
    description:
      - CA certificate to verify the server's TLS certificate. Setting any TLS option
        makes the connection use TLS.
    type: path
    aliases: [ssl_ca]
  client_cert:
    description:
      - Client TLS certificate.
    type: path
    aliases: [ssl_cert]
  client_key:
    description:
      - Client TLS private key.
    type: path
    aliases: [ssl_key]
  check_hostname:
    description:
      - Whether the server's TLS certificate must name I(login_host).
      - Defaults to the driver's behaviour when omitted.
    type: bool
requirements:
  - PyMySQL (Debian package C(python3-pymysql)) on the host the module runs on.
notes:
  - Passwords are passed to the driver, never on a command line, and are masked in
    every returned C(queries) list.
'''

    # The primary's login options, for modules that talk to the primary too.
    PRIMARY = r'''
options:
  primary:
    description:
      - How to reach the primary; the same options as this module's login options.
    type: dict
    suboptions:
      login_host:
        description: The primary's address as this host reaches it.
        type: str
        default: localhost
      login_port:
        description: The primary's port.
        type: int
        default: 3306
      login_user:
        description: Account on the primary.
        type: str
      login_password:
        description: Its password. Never logged nor returned.
        type: str
      login_unix_socket:
        description: Socket, when the module runs on the primary's host.
        type: str
      config_file:
        description: Option file with a C([client]) section, read when it exists.
        type: path
        default: '~/.my.cnf'
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 30
      ca_cert:
        description: CA certificate to verify the primary's TLS certificate.
        type: path
        aliases: [ssl_ca]
      client_cert:
        description: Client TLS certificate.
        type: path
        aliases: [ssl_cert]
      client_key:
        description: Client TLS key.
        type: path
        aliases: [ssl_key]
      check_hostname:
        description: Whether the primary's certificate must name I(login_host).
        type: bool
'''
