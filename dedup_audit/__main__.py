from dedup_audit.cli import main

main()
