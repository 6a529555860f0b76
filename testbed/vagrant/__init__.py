"""Provider ``vagrant``: real VMs (Windows guests for the real study) through python-vagrant.

``preflight`` says what a machine lacks to run a scenario and how to get each thing;
``machines`` turns a scenario into the machine list that ``vms/Vagrantfile`` reads.
"""
