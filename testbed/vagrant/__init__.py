"""Provider ``vagrant``: one real VM per variant behind the lab's gateway, through python-vagrant.

``provider``   the provider: gateway + experiment bridge, machines up/snapshot/restore, per-run
               set-up over ssh, power-off; ``destroy`` removes everything
``machinery``  python-vagrant with per-machine snapshots and failures that raise
``machines``   the scenario as the machine list ``vms/Vagrantfile`` reads; the names of it all
``libvirt``    the isolated management network and the storage pool, made and removed
``preflight``  what a machine lacks to run a scenario, and how to get each thing
``commands``   ``testbed vagrant status|destroy``
"""
