#!/bin/sh
# A tiny "app": adds its two arguments.
echo $(( $1 + $2 ))
