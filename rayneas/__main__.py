from rayneas.cli import main

raise SystemExit(main())
