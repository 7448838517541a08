from touchpoints.cli import main

main()
