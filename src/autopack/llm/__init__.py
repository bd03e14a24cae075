"""Model providers, routing between models, prices, and the replay/record cassettes."""
