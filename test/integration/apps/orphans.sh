#!/bin/sh
# Leaves orphans behind: each background sleep's parent (a subshell) exits at
# once, so the sleeps are reparented to the nearest subreaper (or PID 1), where
# they become zombies when they exit unless someone reaps them.
for i in 1 2 3 4 5; do (sleep 0.2 &); done
sleep 3
