#pragma once
/// \file
/// Everything corun offers, in one include.

#include <corun/data_iterator.hpp>
#include <corun/dtype.hpp>
#include <corun/error.hpp>
#include <corun/shared_array.hpp>
#include <corun/slice.hpp>
#include <corun/slice_view.hpp>
