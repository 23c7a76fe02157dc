# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tcp: the receiving listener is gone once the copy is in."""

import labstate

testinfra_hosts = labstate.rebuilt_names()


def test_no_listener_left_on_the_transfer_port(host):
    assert labstate.var(host, 'replica_rebuild_transport') == 'tcp'
    port = labstate.var(host, 'replica_rebuild_tcp_port', 4444)
    assert not host.socket('tcp://0.0.0.0:%d' % port).is_listening
    assert host.run('pidof socat').rc == 1
