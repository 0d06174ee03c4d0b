"""The pages, one module per area: home and sign-in, the supplier's pages (portfolio,
partnership, ticket queue, visits, nudges), the teacher's, the school and trust leads'."""
