from testbed.agent.server import main

raise SystemExit(main())
