from carbonmonitor.cli import main

raise SystemExit(main())
