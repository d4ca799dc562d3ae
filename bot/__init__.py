"""Cadenza: compose, arrange, render, store and rate music; the Discord adapter sits on top."""
