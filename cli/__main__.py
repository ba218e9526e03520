from placecell.cli import main

main()
