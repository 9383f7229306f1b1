from twinsep.cli import run

run()
