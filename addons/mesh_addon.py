"""The addon as a mitmproxy script, for people who run mitmproxy themselves:

    mitmdump -s "$(agent-mesh proxy --addon-path)" --set mesh_config=agent-mesh.yaml \
        --set confdir=.agent-mesh/mitmproxy
"""

from addons.governance import Governance

addons = [Governance()]
