#!/bin/sh
echo "Hello from Refit! $(cat /built-at)"
