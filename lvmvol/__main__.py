from lvmvol.cli import main

main()
