# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for get-pip.py, which ansible-test downloads from a host our CI cannot reach.

ansible-test runs it in an empty virtual environment with get-pip's arguments
(`--disable-pip-version-check pip==X [--no-setuptools] [--no-wheel]`). The standard
library's ensurepip puts a pip there offline; that pip then installs the exact pip
ansible-test asked for from the package index, as get-pip.py would.
"""
import subprocess
import sys

# In child processes: ensurepip sets PIP_CONFIG_FILE=/dev/null in its own process, which
# would hide the machine's pip configuration (index, certificates) from the second step.
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + args))
