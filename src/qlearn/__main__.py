from qlearn.cli.main import main

raise SystemExit(main())
